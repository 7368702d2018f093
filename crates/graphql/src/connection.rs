//! Relay connections, the one place paging is plumbed: arguments in, `edges { cursor node }`,
//! `pageInfo`, `totalCount` out. Paging itself happens in SQL (`prima_service::paging`);
//! this only converts.
//!
//! One way for every connection field:
//!
//! 1. The field takes `first`, `after`, `last`, `before` (in that order, with descriptions
//!    that name its rows) and turns them into a [`PageRequest`] with [`PageRequest::of`],
//!    which also notes whether `totalCount` was selected.
//! 2. A top-level list (`venues`) hands the request to its service function and converts
//!    the page with [`connection`].
//! 3. A nested list (`Venue.bookings`) loads through [`nested`]: its dataloader key, declared
//!    with [`nested_connection!`] next to the field's domain, pages every parent of the
//!    response that asked for the same arguments in one service call.
//!
//! The four arguments stay written out in each field's signature: async-graphql takes an
//! argument's description from the resolver's own `#[graphql(desc)]`, has no way to flatten
//! a struct into arguments, and each field's descriptions name its own rows ("Return the
//! first n bookings ..."), which `schema.graphql` keeps.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::connection::EmptyFields;
use async_graphql::connection::{Connection, Edge};
use async_graphql::dataloader::Loader;
use async_graphql::{Context, OutputType, SimpleObject};
use prima_service::Error;
use prima_service::access::Actor;
use prima_service::db::Db;
use prima_service::paging::{Page, PageArgs, PagesOrDenied};
use uuid::Uuid;

use crate::context::loader;
use crate::error::{ApiError, Result};
use crate::loaders::Loaders;

/// Fields every connection adds to Relay's.
#[derive(SimpleObject)]
pub struct Counted {
    /// How many items match the filters, across all pages. Counted in the same SQL
    /// statement as the page, and only when asked for.
    pub total_count: i64,
}

/// A Relay connection of `N`.
pub type Conn<N> = Connection<String, N, Counted, EmptyFields>;

/// The page a connection field was asked for: its arguments, and whether to count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PageRequest {
    /// The paging arguments as the client sent them.
    pub page: PageArgs,
    /// Whether the client selected `totalCount` on this field.
    pub with_total: bool,
}

impl PageRequest {
    /// A connection field's paging arguments, and whether it must count.
    pub fn of(
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> PageRequest {
        PageRequest {
            page: PageArgs {
                first,
                after,
                last,
                before,
            },
            with_total: ctx.look_ahead().field("totalCount").exists(),
        }
    }
}

/// A page as a connection, converting each row.
pub fn connection<T, N: OutputType>(page: Page<T>, mut convert: impl FnMut(T) -> N) -> Conn<N> {
    let mut conn = Connection::with_additional_fields(
        page.has_previous_page,
        page.has_next_page,
        Counted {
            total_count: page.total_count.unwrap_or(0) as i64,
        },
    );
    conn.edges.extend(
        page.edges
            .into_iter()
            .map(|edge| Edge::new(edge.cursor, convert(edge.node))),
    );
    conn
}

/// One parent's page of a nested connection, through the request's dataloader, converting
/// each row.
pub async fn nested<Q: PageQuery, N: OutputType>(
    ctx: &Context<'_>,
    parent: Uuid,
    query: Q,
    convert: impl FnMut(Q::Node) -> N,
) -> Result<Conn<N>> {
    let key = PageOf {
        parent,
        query: Arc::new(query),
    };
    match loader(ctx)?.load_one(key).await? {
        Some(page) => Ok(connection(page?, convert)),
        None => Err(ApiError(Error::NotFound { what: "venue" })),
    }
}

/// A nested connection's query: how to page its rows for many parents at once. Declare one
/// with [`nested_connection!`].
pub trait PageQuery: Send + Sync + Hash + Eq + 'static {
    /// The row type.
    type Node: Clone + Send + Sync + 'static;

    /// One page per parent; a parent the caller may not list gets its own error.
    fn fetch(
        &self,
        db: &Db,
        actor: &Actor,
        parents: &[Uuid],
    ) -> impl Future<Output = Result<PagesOrDenied<Self::Node>, Error>> + Send;
}

/// What a service's batch paging function returns, as pages per parent: either pages alone
/// (the caller's scope is applied in SQL), or a page or a denial for each parent (when the
/// caller may see a parent but not list its rows, e.g. a venue's payouts below MANAGER).
pub trait IntoPages<T> {
    /// Every parent's page, or why the caller may not have it.
    fn into_pages(self) -> PagesOrDenied<T>;
}

impl<T> IntoPages<T> for HashMap<Uuid, Page<T>> {
    fn into_pages(self) -> PagesOrDenied<T> {
        self.into_iter().map(|(id, page)| (id, Ok(page))).collect()
    }
}

impl<T> IntoPages<T> for PagesOrDenied<T> {
    fn into_pages(self) -> PagesOrDenied<T> {
        self
    }
}

/// Declares the dataloader key of a nested connection and how it is paged: one service
/// function that pages many parents at once, called with the database, the caller, the
/// parents, the key's own fields (if any), then the paging arguments.
///
/// - `Key => Node, pages_fn` and `Key { field: Type, ... } => Node, pages_fn`: a key holding
///   the fields and `page: PageRequest`, paged by
///   `pages_fn(db, actor, parents, field..., &PageArgs, with_total)`.
/// - `Key(Query) => Node, pages_fn`: a key wrapping a service query that carries its own
///   paging (`BookingQuery`), paged by `pages_fn(db, actor, parents, &Query)`.
///
/// `pages_fn` may return pages alone or a page or a denial per parent ([`IntoPages`]).
macro_rules! nested_connection {
    ($(#[$doc:meta])* $key:ident => $node:ty, $pages:path) => {
        $crate::connection::nested_connection!($(#[$doc])* $key {} => $node, $pages);
    };
    (
        $(#[$doc:meta])*
        $key:ident { $($(#[$field_doc:meta])* $field:ident: $ty:ty),* $(,)? } => $node:ty, $pages:path
    ) => {
        $(#[$doc])*
        #[derive(PartialEq, Eq, Hash)]
        pub struct $key {
            $(
                $(#[$field_doc])*
                pub $field: $ty,
            )*
            /// The page asked for.
            pub page: $crate::connection::PageRequest,
        }

        $crate::connection::nested_connection!(@fetch $key => $node, |key, db, actor, parents| {
            $pages(
                &db.conn,
                actor,
                parents,
                $(key.$field,)*
                &key.page.page,
                key.page.with_total,
            )
        });
    };
    ($(#[$doc:meta])* $key:ident($query:ty) => $node:ty, $pages:path) => {
        $(#[$doc])*
        #[derive(PartialEq, Eq, Hash)]
        pub struct $key(pub $query);

        $crate::connection::nested_connection!(@fetch $key => $node, |key, db, actor, parents| {
            $pages(&db.conn, actor, parents, &key.0)
        });
    };
    // The names of the call's inputs come from the arm above, so that its call can use them.
    (@fetch $key:ident => $node:ty, |$this:ident, $db:ident, $actor:ident, $parents:ident| $call:block) => {
        impl $crate::connection::PageQuery for $key {
            type Node = $node;

            async fn fetch(
                &self,
                $db: &prima_service::db::Db,
                $actor: &prima_service::access::Actor,
                $parents: &[uuid::Uuid],
            ) -> prima_service::Result<prima_service::paging::PagesOrDenied<$node>> {
                let $this = self;
                let pages = $call.await?;
                Ok($crate::connection::IntoPages::into_pages(pages))
            }
        }
    };
}
pub(crate) use nested_connection;

/// One parent's page of a nested connection: the dataloader key.
#[derive(Debug)]
pub struct PageOf<Q> {
    /// The parent's id.
    pub parent: Uuid,
    /// The connection's arguments, shared by the keys of one field.
    pub query: Arc<Q>,
}

impl<Q> Clone for PageOf<Q> {
    fn clone(&self) -> Self {
        PageOf {
            parent: self.parent,
            query: self.query.clone(),
        }
    }
}
impl<Q: PartialEq> PartialEq for PageOf<Q> {
    fn eq(&self, other: &Self) -> bool {
        self.parent == other.parent && self.query == other.query
    }
}
impl<Q: Eq> Eq for PageOf<Q> {}
impl<Q: Hash> Hash for PageOf<Q> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.query.hash(state);
    }
}

/// Keys that share the same query arguments are paged for all their parents at once.
impl<Q: PageQuery> Loader<PageOf<Q>> for Loaders {
    type Value = Result<Page<Q::Node>, Error>;
    type Error = Error;

    async fn load(&self, keys: &[PageOf<Q>]) -> Result<HashMap<PageOf<Q>, Self::Value>, Error> {
        let mut groups: HashMap<Arc<Q>, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry(key.query.clone())
                .or_default()
                .push(key.parent);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (query, parents) in groups {
            let pages = query.fetch(&self.db, &self.actor, &parents).await?;
            for (parent, page) in pages {
                out.insert(
                    PageOf {
                        parent,
                        query: query.clone(),
                    },
                    page,
                );
            }
        }
        Ok(out)
    }
}
