//! Relay cursor connections, paged in SQL, for one parent or many at once.
//!
//! Policy: every list that can grow without bound is paged here. `first` defaults to 20
//! and is capped at 100. Ordering is a [`Sort`] whose last key is unique (the id), so a
//! cursor names exactly one position. Cursors are opaque base64url JSON carrying the sort's
//! name and the row's key values; a cursor of another ordering is refused.
//!
//! Nested connections (`venues { bookings(first: 50) }`) are paged for all parents in one
//! statement: the caller's query selects its rows plus the parent id as `__parent`, and
//! [`fetch_pages`] pages it per parent (a `UNION ALL` term per parent on SQLite, a LATERAL
//! subquery per parent on PostgreSQL, each ordered and limited from the index), counting
//! the total in the same statement when it is asked for, so the number of statements does
//! not grow with the number of parents.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, Asterisk, CommonTableExpression, Condition, Expr, ExprTrait, Func, JoinType, Order,
    Query, SelectStatement, SimpleExpr, SubQueryStatement, UnionType, Value, WindowStatement,
    WithClause, WithQuery,
};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, QueryResult};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::error::{Error, Result};

/// Page size when the client gives none.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The most rows one page may ask for.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The column alias the inner query gives the parent id.
pub const PARENT: &str = "__parent";
const TOTAL: &str = "__total";
const ROW: &str = "__rn";

/// Relay paging arguments as the client sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PageArgs {
    /// Rows after the cursor `after`.
    pub first: Option<i32>,
    /// Start after this cursor.
    pub after: Option<String>,
    /// Rows before the cursor `before`.
    pub last: Option<i32>,
    /// End before this cursor.
    pub before: Option<String>,
}

/// The type of a sort key, to encode and decode it in a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A timestamp.
    Time,
    /// Text.
    Text,
    /// A UUID.
    Uuid,
    /// An integer.
    Int,
}

/// One key of an ordering.
#[derive(Debug, Clone, Copy)]
pub struct SortKey {
    /// The column name in the inner query.
    pub column: &'static str,
    /// Its type.
    pub kind: KeyKind,
    /// Descending order.
    pub descending: bool,
}

/// An ordering: its keys, the last one unique.
#[derive(Debug, Clone, Copy)]
pub struct Sort {
    /// A stable name, written into cursors (e.g. `bookings.booking_time.asc`).
    pub name: &'static str,
    /// The keys, most significant first; the last one must be unique.
    pub keys: &'static [SortKey],
}

impl Sort {
    /// Orders by one column, then by `id` in the same direction.
    pub const fn key(column: &'static str, kind: KeyKind, descending: bool) -> SortKey {
        SortKey {
            column,
            kind,
            descending,
        }
    }
}

/// What to fetch, validated.
#[derive(Debug, Clone)]
pub struct Window {
    limit: u64,
    forward: bool,
    cursor: Option<Vec<Value>>,
}

/// One row of a page with its cursor.
#[derive(Debug, Clone)]
pub struct Edge<T> {
    /// Opaque position of this row.
    pub cursor: String,
    /// The row.
    pub node: T,
}

/// One page of one parent's rows.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows, in the requested order.
    pub edges: Vec<Edge<T>>,
    /// More rows follow the last edge.
    pub has_next_page: bool,
    /// More rows precede the first edge.
    pub has_previous_page: bool,
    /// Rows matching the filters, ignoring paging (when it was asked for).
    pub total_count: Option<u64>,
}

impl<T> Page<T> {
    /// A page with no rows (the parent had none).
    pub fn empty(window: &Window, with_total: bool) -> Self {
        Page {
            edges: Vec::new(),
            has_next_page: !window.forward && window.cursor.is_some(),
            has_previous_page: window.forward && window.cursor.is_some(),
            total_count: with_total.then_some(0),
        }
    }

    /// The same page with its nodes converted.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            edges: self
                .edges
                .into_iter()
                .map(|edge| Edge {
                    cursor: edge.cursor,
                    node: f(edge.node),
                })
                .collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }
}

impl PageArgs {
    /// Checks the arguments against the ordering: sizes within 0..=100, no mixing of
    /// forward and backward paging, and cursors that belong to this ordering.
    pub fn window(&self, sort: &Sort) -> Result<Window> {
        let size = |field: &str, value: Option<i32>| -> Result<Option<u64>> {
            match value {
                None => Ok(None),
                Some(n) if n < 0 => Err(Error::invalid(
                    field,
                    format!("`{field}` must not be negative"),
                )),
                Some(n) if n as u64 > MAX_PAGE_SIZE => Err(Error::invalid(
                    field,
                    format!("`{field}` is at most {MAX_PAGE_SIZE}; page with `after` to see more"),
                )),
                Some(n) => Ok(Some(n as u64)),
            }
        };
        let first = size("first", self.first)?;
        let last = size("last", self.last)?;
        if first.is_some() && last.is_some() {
            return Err(Error::invalid(
                "last",
                "give either `first` or `last`, not both",
            ));
        }
        if self.after.is_some() && self.before.is_some() {
            return Err(Error::invalid(
                "before",
                "give either `after` or `before`, not both",
            ));
        }
        let backward = last.is_some() || (first.is_none() && self.before.is_some());
        if backward && self.after.is_some() {
            return Err(Error::invalid(
                "after",
                "`after` pages forward: use it with `first`",
            ));
        }
        if !backward && self.before.is_some() {
            return Err(Error::invalid(
                "before",
                "`before` pages backward: use it with `last`",
            ));
        }
        let (cursor, field) = if backward {
            (self.before.as_deref(), "before")
        } else {
            (self.after.as_deref(), "after")
        };
        let cursor = cursor.map(|c| decode_cursor(sort, c, field)).transpose()?;
        Ok(Window {
            limit: if backward { last } else { first }.unwrap_or(DEFAULT_PAGE_SIZE),
            forward: !backward,
            cursor,
        })
    }
}

fn decode_cursor(sort: &Sort, cursor: &str, field: &str) -> Result<Vec<Value>> {
    let bad = || Error::invalid(field, format!("`{field}` is not a cursor of this list"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let json: Json = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if json.get("o").and_then(Json::as_str) != Some(sort.name) {
        return Err(bad());
    }
    let keys = json.get("k").and_then(Json::as_array).ok_or_else(bad)?;
    if keys.len() != sort.keys.len() {
        return Err(bad());
    }
    sort.keys
        .iter()
        .zip(keys)
        .map(|(key, value)| {
            let value = match key.kind {
                KeyKind::Time => value
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| Value::from(t.with_timezone(&Utc))),
                KeyKind::Text => value.as_str().map(|s| Value::from(s.to_owned())),
                KeyKind::Uuid => value
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .map(Value::from),
                KeyKind::Int => value.as_i64().map(Value::from),
            };
            value.ok_or_else(bad)
        })
        .collect()
}

fn encode_cursor(sort: &Sort, row: &QueryResult) -> Result<String> {
    let keys = sort
        .keys
        .iter()
        .map(|key| {
            Ok(match key.kind {
                KeyKind::Time => Json::from(
                    row.try_get::<DateTime<Utc>>("", key.column)?
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                ),
                KeyKind::Text => Json::from(row.try_get::<String>("", key.column)?),
                KeyKind::Uuid => Json::from(row.try_get::<Uuid>("", key.column)?.to_string()),
                KeyKind::Int => Json::from(row.try_get::<i64>("", key.column)?),
            })
        })
        .collect::<Result<Vec<Json>, sea_orm::DbErr>>()?;
    let json = serde_json::json!({ "o": sort.name, "k": keys });
    Ok(URL_SAFE_NO_PAD.encode(json.to_string()))
}

/// Rows strictly beyond the cursor in the direction of travel:
/// `k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...` with `<` for descending keys.
fn beyond(sort: &Sort, values: &[Value], forward: bool) -> Condition {
    let mut any = Condition::any();
    for (i, key) in sort.keys.iter().enumerate() {
        let mut all = Condition::all();
        for (prev, value) in sort.keys[..i].iter().zip(values) {
            all = all.add(Expr::col(Alias::new(prev.column)).eq(value.clone()));
        }
        let column = Expr::col(Alias::new(key.column));
        let ascending = key.descending != forward;
        let step: SimpleExpr = if ascending {
            column.gt(values[i].clone())
        } else {
            column.lt(values[i].clone())
        };
        any = any.add(all.add(step));
    }
    any
}

/// Pages the rows of `inner` per parent. `inner` must select the row's columns and the
/// parent id aliased [`PARENT`], with every filter and access condition already applied;
/// `parents` are the parent ids it is restricted to. Parents without rows are absent from
/// the map (use [`pages_for`]).
///
/// One statement for all parents, in either plan:
/// - SQLite (no LATERAL): the query once, as a CTE that is not materialized, then one
///   `UNION ALL` term per parent (`... WHERE __parent = X'..' ORDER BY ... LIMIT limit + 1`),
///   so each page too is read from the index in order and stops after the page.
/// - PostgreSQL: `unnest(parents) CROSS JOIN LATERAL (... WHERE __parent = parent ORDER BY
///   ... LIMIT limit + 1)`, so each parent's page is read from the index in order and the scan
///   stops after the page instead of numbering every row of a large venue (the same result;
///   the statement-count and paging tests run on both).
pub async fn fetch_pages<M: FromQueryResult>(
    db: &impl ConnectionTrait,
    inner: SelectStatement,
    parents: &[Uuid],
    sort: &Sort,
    window: &Window,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<M>>> {
    if parents.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = if db.get_database_backend() == DbBackend::Postgres {
        db.query_all(&lateral_pages(inner, parents, sort, window, with_total))
            .await?
    } else {
        db.query_all(&compound_pages(inner, parents, sort, window, with_total))
            .await?
    };
    let mut pages: HashMap<Uuid, Page<M>> = HashMap::new();
    for row in rows {
        let parent: Uuid = row.try_get("", PARENT)?;
        let number: i64 = row.try_get("", ROW)?;
        let page = pages
            .entry(parent)
            .or_insert_with(|| Page::empty(window, false));
        if with_total && page.total_count.is_none() {
            page.total_count = Some(row.try_get::<i64>("", TOTAL)? as u64);
        }
        if number as u64 > window.limit {
            if window.forward {
                page.has_next_page = true;
            } else {
                page.has_previous_page = true;
            }
            continue;
        }
        let cursor = encode_cursor(sort, &row)?;
        page.edges.push(Edge {
            cursor,
            node: M::from_query_result(&row, "")?,
        });
    }
    if !window.forward {
        for page in pages.values_mut() {
            page.edges.reverse();
        }
    }
    Ok(pages)
}

/// The order of travel of each sort key.
fn travel_order(key: &SortKey, window: &Window) -> Order {
    if key.descending != window.forward {
        Order::Asc
    } else {
        Order::Desc
    }
}

/// The most `UNION ALL` terms SQLite takes in one compound (`SQLITE_MAX_COMPOUND_SELECT`):
/// more parents than this are paged by compounds nested in one outer compound.
const MAX_COMPOUND_TERMS: usize = 500;

/// SQLite's plan: the rows, and those beyond the cursor, as CTEs (not materialized, so each
/// term reads its parent's rows through the index, and the parameters are bound once), one
/// term per parent
/// ordered and limited on its own, numbered and counted within its page.
fn compound_pages(
    inner: SelectStatement,
    parents: &[Uuid],
    sort: &Sort,
    window: &Window,
    with_total: bool,
) -> WithQuery {
    // `c`: every row (what the total counts); `b`: those beyond the cursor (what is paged).
    let rows = Alias::new("c");
    let beyond_cursor = Alias::new("b");
    let mut paged = Query::select();
    paged.column(Asterisk).from(rows.clone());
    if let Some(values) = &window.cursor {
        paged.cond_where(beyond(sort, values, window.forward));
    }
    let mut over = WindowStatement::new();
    for key in sort.keys {
        over.order_by(Alias::new(key.column), travel_order(key, window));
    }
    let term = |parent: &Uuid| {
        // The id as a literal: parameters would grow with the parents (SQLite takes 32,766).
        let this_parent =
            Expr::col(Alias::new(PARENT)).eq(Expr::cust(format!("X'{}'", parent.simple())));
        let mut page = Query::select();
        page.column(Asterisk)
            .from(beyond_cursor.clone())
            .and_where(this_parent.clone());
        for key in sort.keys {
            page.order_by(Alias::new(key.column), travel_order(key, window));
        }
        page.limit(window.limit + 1);
        let mut numbered = Query::select();
        numbered.column((Alias::new("x"), Asterisk)).expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            over.clone(),
            Alias::new(ROW),
        );
        if with_total {
            let count = Query::select()
                .expr(Expr::cust("COUNT(*)"))
                .from(rows.clone())
                .and_where(this_parent)
                .to_owned();
            numbered.expr_as(
                SimpleExpr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(count))),
                Alias::new(TOTAL),
            );
        }
        numbered.from_subquery(page, Alias::new("x"));
        numbered
    };
    let compound = |terms: &mut dyn Iterator<Item = SelectStatement>| {
        let mut first = terms.next().expect("a compound of at least one term");
        for next in terms {
            first.union(UnionType::All, next);
        }
        first
    };
    let groups: Vec<SelectStatement> = parents
        .chunks(MAX_COMPOUND_TERMS)
        .map(|group| {
            let all = compound(&mut group.iter().map(term));
            let mut wrapped = Query::select();
            wrapped.column(Asterisk).from_subquery(all, Alias::new("g"));
            wrapped
        })
        .collect();
    let mut outer = Query::select();
    outer
        .column(Asterisk)
        .from_subquery(compound(&mut groups.into_iter()), Alias::new("p"))
        .order_by(Alias::new(PARENT), Order::Asc)
        .order_by(Alias::new(ROW), Order::Asc);
    let cte = |name: Alias, query: SelectStatement| {
        CommonTableExpression::new()
            .query(query)
            .table_name(name)
            .materialized(false)
            .to_owned()
    };
    let mut all_rows = Query::select();
    all_rows
        .column(Asterisk)
        .from_subquery(inner, Alias::new("i"));
    outer.with(
        WithClause::new()
            .cte(cte(rows, all_rows))
            .cte(cte(beyond_cursor, paged))
            .to_owned(),
    )
}

/// PostgreSQL's plan: one LATERAL subquery per parent, ordered and limited, so an index on
/// (parent, sort key) serves each page without reading the parent's other rows.
fn lateral_pages(
    inner: SelectStatement,
    parents: &[Uuid],
    sort: &Sort,
    window: &Window,
    with_total: bool,
) -> SelectStatement {
    let parent_of = Alias::new("parent_of");
    let this_parent = Expr::col((parent_of.clone(), parent_of.clone()));
    let mut over = WindowStatement::new();
    for key in sort.keys {
        over.order_by(Alias::new(key.column), travel_order(key, window));
    }
    let mut page = Query::select();
    page.column((Alias::new("c"), Asterisk)).expr_window_as(
        Expr::cust("ROW_NUMBER()"),
        over,
        Alias::new(ROW),
    );
    // The count is a LATERAL of its own, joined before the page: evaluated once per parent,
    // not once per row of the page as a correlated subquery in the select list would be.
    let count = with_total.then(|| {
        Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new(TOTAL))
            .from_subquery(inner.clone(), Alias::new("t"))
            .and_where(Expr::col((Alias::new("t"), Alias::new(PARENT))).eq(this_parent.clone()))
            .to_owned()
    });
    page.from_subquery(inner, Alias::new("c"))
        .and_where(Expr::col((Alias::new("c"), Alias::new(PARENT))).eq(this_parent));
    if let Some(values) = &window.cursor {
        page.cond_where(beyond(sort, values, window.forward));
    }
    for key in sort.keys {
        page.order_by(Alias::new(key.column), travel_order(key, window));
    }
    page.limit(window.limit + 1);

    let ids: Vec<Uuid> = parents.to_vec();
    let mut outer = Query::select();
    outer.column((Alias::new("p"), Asterisk)).from_function(
        Func::cust("unnest").arg(Expr::val(ids).cast_as(Alias::new("uuid[]"))),
        parent_of,
    );
    if let Some(count) = count {
        outer
            .column((Alias::new("k"), Alias::new(TOTAL)))
            .join_lateral(
                JoinType::InnerJoin,
                count,
                Alias::new("k"),
                Condition::all(),
            );
    }
    outer
        .join_lateral(JoinType::InnerJoin, page, Alias::new("p"), Condition::all())
        .order_by((Alias::new("p"), Alias::new(PARENT)), Order::Asc)
        .order_by((Alias::new("p"), Alias::new(ROW)), Order::Asc);
    outer
}

/// Pages keyed by parent, each one a page or the error of a parent the caller may not list.
pub type PagesOrDenied<M> = HashMap<Uuid, Result<Page<M>>>;

/// Pages of the given parents, in the parents' order, an empty page for a parent with none.
pub fn pages_for<M>(
    parents: &[Uuid],
    mut pages: HashMap<Uuid, Page<M>>,
    window: &Window,
    with_total: bool,
) -> HashMap<Uuid, Page<M>> {
    for parent in parents {
        pages
            .entry(*parent)
            .or_insert_with(|| Page::empty(window, with_total));
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    const SORT: Sort = Sort {
        name: "test.time.asc",
        keys: &[
            Sort::key("booking_time", KeyKind::Time, false),
            Sort::key("id", KeyKind::Uuid, false),
        ],
    };
    const OTHER: Sort = Sort {
        name: "test.name.asc",
        keys: &[
            Sort::key("name", KeyKind::Text, false),
            Sort::key("id", KeyKind::Uuid, false),
        ],
    };

    fn cursor(sort: &Sort, keys: Json) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::json!({"o": sort.name, "k": keys}).to_string())
    }

    #[test]
    fn first_defaults_to_twenty_and_is_capped_at_one_hundred() {
        let window = PageArgs::default().window(&SORT).unwrap();
        assert_eq!(window.limit, 20);
        assert!(window.forward);
        let err = PageArgs {
            first: Some(1000),
            ..Default::default()
        }
        .window(&SORT)
        .unwrap_err();
        assert!(matches!(err, Error::Invalid { ref field, .. } if field == "first"));
        assert!(
            PageArgs {
                first: Some(-1),
                ..Default::default()
            }
            .window(&SORT)
            .is_err()
        );
        assert_eq!(
            PageArgs {
                first: Some(100),
                ..Default::default()
            }
            .window(&SORT)
            .unwrap()
            .limit,
            100
        );
    }

    #[test]
    fn mixing_directions_is_refused() {
        for args in [
            PageArgs {
                first: Some(1),
                last: Some(1),
                ..Default::default()
            },
            PageArgs {
                last: Some(1),
                after: Some("x".into()),
                ..Default::default()
            },
            PageArgs {
                first: Some(1),
                before: Some("x".into()),
                ..Default::default()
            },
        ] {
            assert_eq!(args.window(&SORT).unwrap_err().code(), "BAD_USER_INPUT");
        }
    }

    #[test]
    fn a_cursor_of_another_ordering_or_garbage_is_refused() {
        let foreign = cursor(&OTHER, serde_json::json!(["a", Uuid::nil().to_string()]));
        for after in [foreign, "not base64!".into(), URL_SAFE_NO_PAD.encode("{}")] {
            let err = PageArgs {
                after: Some(after),
                ..Default::default()
            }
            .window(&SORT)
            .unwrap_err();
            assert!(matches!(err, Error::Invalid { ref field, .. } if field == "after"));
        }
    }

    #[test]
    fn a_well_formed_cursor_decodes_to_typed_values() {
        let after = cursor(
            &SORT,
            serde_json::json!(["2026-11-26T06:00:00.000001Z", Uuid::nil().to_string()]),
        );
        let window = PageArgs {
            first: Some(5),
            after: Some(after),
            ..Default::default()
        }
        .window(&SORT)
        .unwrap();
        let values = window.cursor.unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(values[1], Value::from(Uuid::nil()));
    }
}

#[cfg(test)]
mod db_tests {
    //! Paging against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL).

    use prima_entity::enums::UserRole;
    use prima_entity::venues;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use uuid::Uuid;

    use super::PageArgs;
    use crate::bookings::{self, BookingQuery};
    use crate::testing::fixtures;
    use crate::venues::{self as venue_reads, VenueFilter, VenueOrder};

    async fn named_venues(db: &crate::testing::TestDb, names: &[&str]) -> Vec<(String, Uuid)> {
        let mut rows = Vec::new();
        for name in names {
            let id = fixtures::venue(db).await;
            venues::Entity::update_many()
                .col_expr(venues::Column::Name, Expr::value(*name))
                .filter(venues::Column::Id.eq(id))
                .exec(&db.conn)
                .await
                .unwrap();
            rows.push((name.to_string(), id));
        }
        rows
    }

    #[tokio::test]
    async fn paging_forward_then_backward_visits_every_row_once_in_order() {
        let db = fixtures::db().await;
        let mut expected = named_venues(
            &db,
            &[
                "Bistro",
                "Aperitivo",
                "Cellar",
                "Bistro",
                "Dock",
                "Atrium",
                "Brew",
            ],
        )
        .await;
        expected.sort();
        let admin = fixtures::actor(Uuid::new_v4(), UserRole::Admin, &[]);
        let filter = VenueFilter::default();

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let args = PageArgs {
                first: Some(3),
                after: after.clone(),
                ..Default::default()
            };
            let page =
                venue_reads::page(&db.conn, &admin, &filter, VenueOrder::NameAsc, &args, true)
                    .await
                    .unwrap();
            assert_eq!(page.total_count, Some(7));
            assert_eq!(page.has_previous_page, after.is_some());
            seen.extend(page.edges.iter().map(|e| (e.node.name.clone(), e.node.id)));
            if !page.has_next_page {
                break;
            }
            after = page.edges.last().map(|e| e.cursor.clone());
        }
        assert_eq!(
            seen, expected,
            "forward paging in (name, id) order, each row once"
        );

        let mut seen_back = Vec::new();
        let mut before = None;
        loop {
            let args = PageArgs {
                last: Some(3),
                before: before.clone(),
                ..Default::default()
            };
            let page =
                venue_reads::page(&db.conn, &admin, &filter, VenueOrder::NameAsc, &args, false)
                    .await
                    .unwrap();
            assert_eq!(page.has_next_page, before.is_some());
            let mut chunk: Vec<_> = page
                .edges
                .iter()
                .map(|e| (e.node.name.clone(), e.node.id))
                .collect();
            chunk.extend(seen_back);
            seen_back = chunk;
            if !page.has_previous_page {
                break;
            }
            before = page.edges.first().map(|e| e.cursor.clone());
        }
        assert_eq!(
            seen_back, expected,
            "backward paging returns pages in forward order"
        );

        let desc = venue_reads::page(
            &db.conn,
            &admin,
            &filter,
            VenueOrder::NameDesc,
            &PageArgs {
                first: Some(100),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
        let mut reversed = expected.clone();
        reversed.reverse();
        let names: Vec<_> = desc
            .edges
            .iter()
            .map(|e| (e.node.name.clone(), e.node.id))
            .collect();
        assert_eq!(names, reversed);
    }

    #[tokio::test]
    async fn a_venue_filter_and_name_search_apply_in_sql_with_wildcards_escaped() {
        let db = fixtures::db().await;
        named_venues(
            &db,
            &["The 100% Bar", "Rooftop 100", "Cafe_Luna", "CafeXLuna"],
        )
        .await;
        let admin = fixtures::actor(Uuid::new_v4(), UserRole::Admin, &[]);
        let search = |text: &str| VenueFilter {
            search: Some(text.into()),
            ..Default::default()
        };
        let all = PageArgs::default();
        let found = |page: super::Page<venues::Model>| {
            page.edges
                .into_iter()
                .map(|e| e.node.name)
                .collect::<Vec<_>>()
        };
        let page = venue_reads::page(
            &db.conn,
            &admin,
            &search("100%"),
            VenueOrder::NameAsc,
            &all,
            false,
        )
        .await
        .unwrap();
        assert_eq!(found(page), ["The 100% Bar"]);
        let page = venue_reads::page(
            &db.conn,
            &admin,
            &search("cafe_"),
            VenueOrder::NameAsc,
            &all,
            false,
        )
        .await
        .unwrap();
        assert_eq!(found(page), ["Cafe_Luna"], "`_` is literal, not a wildcard");
    }

    #[tokio::test]
    async fn pages_of_many_parents_in_one_statement_equal_each_parent_paged_alone() {
        let db = fixtures::db().await;
        let venues_with = [5usize, 0, 3];
        let mut parents = Vec::new();
        for count in venues_with {
            let venue = fixtures::venue(&db).await;
            for _ in 0..count {
                fixtures::booking(&db, venue, None).await;
            }
            parents.push(venue);
        }
        let admin = fixtures::actor(Uuid::new_v4(), UserRole::Admin, &[]);
        let query = BookingQuery {
            page: PageArgs {
                first: Some(2),
                ..Default::default()
            },
            with_total: true,
            ..Default::default()
        };
        let before = db.stats.statements();
        let together = bookings::pages_by_venue(&db.conn, &admin, &parents, &query)
            .await
            .unwrap();
        assert_eq!(
            db.stats.statements() - before,
            1,
            "one statement for every parent"
        );
        for (venue, count) in parents.iter().zip(venues_with) {
            let alone = bookings::pages_by_venue(&db.conn, &admin, &[*venue], &query)
                .await
                .unwrap()
                .remove(venue)
                .unwrap();
            let batched = &together[venue];
            assert_eq!(batched.total_count, Some(count as u64));
            assert_eq!(batched.has_next_page, count > 2);
            let ids = |p: &super::Page<prima_entity::bookings::Model>| {
                p.edges.iter().map(|e| e.node.id).collect::<Vec<_>>()
            };
            assert_eq!(ids(batched), ids(&alone));
            assert_eq!(ids(batched).len(), count.min(2));
        }
    }

    #[tokio::test]
    async fn a_caller_without_access_pages_nothing_of_the_venue() {
        let db = fixtures::db().await;
        let (mine, theirs) = (fixtures::venue(&db).await, fixtures::venue(&db).await);
        fixtures::booking(&db, theirs, None).await;
        let user = fixtures::actor(
            Uuid::new_v4(),
            UserRole::Manager,
            &[(mine, crate::access::Level::Manager)],
        );
        let query = BookingQuery {
            with_total: true,
            ..Default::default()
        };
        let pages = bookings::pages_by_venue(&db.conn, &user, &[theirs], &query)
            .await
            .unwrap();
        assert_eq!(pages[&theirs].total_count, Some(0));
        assert!(pages[&theirs].edges.is_empty());
        let page = venue_reads::page(
            &db.conn,
            &user,
            &VenueFilter::default(),
            VenueOrder::NameAsc,
            &PageArgs::default(),
            true,
        )
        .await
        .unwrap();
        assert_eq!(page.total_count, Some(1));
        assert_eq!(page.edges[0].node.id, mine);
    }
}
