//! Relay connections: arguments in, `edges { cursor node }`, `pageInfo`, `totalCount` out.
//! Paging itself happens in SQL (prima_service::paging); this only converts.

use async_graphql::connection::EmptyFields;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, OutputType, SimpleObject};
use prima_service::paging::{Page, PageArgs};

/// Fields every connection adds to Relay's.
#[derive(SimpleObject)]
pub struct Counted {
    /// How many items match the filters, across all pages. Counted in the same SQL
    /// statement as the page, and only when asked for.
    pub total_count: i64,
}

/// A Relay connection of `N`.
pub type Conn<N> = Connection<String, N, Counted, EmptyFields>;

/// Paging arguments as the client sent them.
pub fn page_args(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> PageArgs {
    PageArgs {
        first,
        after,
        last,
        before,
    }
}

/// Whether the client selected `totalCount` on this connection field.
pub fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
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
