//! Subscriptions over real WebSockets (ARCHITECTURE.md "Real time"): what a subscriber of
//! `bookingChanged` receives, and only that; resuming after a cursor; access checked at
//! subscribe time, per event, and again while subscribed; events crossing replicas.

use std::time::Duration;

use prima_server::config::ServeArgs;
use prima_tests::{Frame, Pricing, Role, TestApp, User, Ws, eventually, subscribers};
use serde_json::{Value, json};

const BOOKING_CHANGED: &str =
    "subscription($venues: [ID!], $statuses: [BookingStatus!], $after: String) {
    bookingChanged(venueIds: $venues, statuses: $statuses, after: $after) {
        cursor action previousStatus occurredAt
        booking { id status diners notes venue { id } }
    } }";

/// Two venues with prices, built on a server whose subscribers' access is re-checked every
/// 200 ms: the first confirms bookings at creation and has a COORDINATOR, the last makes
/// them wait for approval and has a venue ADMIN ("gm"); neither sees the other's venue.
struct World {
    app: TestApp,
    /// The global ADMIN's token.
    admin: String,
    /// The token of the last venue's venue ADMIN.
    gm: String,
    /// The first venue's COORDINATOR.
    coordinator: User,
    /// The first venue (the coordinator's; it confirms bookings at creation).
    first: String,
    /// The last venue (gm's; bookings wait for approval).
    last: String,
}

async fn world() -> World {
    world_on(
        TestApp::empty_with(ServeArgs {
            subscription_recheck_ms: 200,
            ..ServeArgs::default()
        })
        .await,
    )
    .await
}

/// The world's venues and users, built on `app`.
async fn world_on(app: TestApp) -> World {
    let first = app.bookable_venue().await;
    let last = app
        .venue()
        .requiring_approval()
        .with_pricing(Pricing::default())
        .create()
        .await;
    let gm = app.user_with_role(&last, Role::Admin).await.token;
    let coordinator = app.user_with_role(&first, Role::Coordinator).await;
    let admin = app.admin().await.token.clone();
    World {
        app,
        admin,
        gm,
        coordinator,
        first,
        last,
    }
}

impl World {
    async fn ok(&self, token: &str, query: &str, input: Value) -> Value {
        self.app
            .query_ok(token, query, json!({ "input": input }))
            .await
    }

    /// A new guest of `venue` and a booking for them two days out, made by the admin; the
    /// booking's id.
    async fn book(&self, venue: &str) -> String {
        let guest = self
            .ok(
                &self.admin,
                "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
                json!({ "venueId": venue, "firstName": "Lee", "lastName": "Park",
                        "email": format!("{}@example.com", uuid::Uuid::new_v4()) }),
            )
            .await["createGuest"]["guest"]["id"]
            .clone();
        let time = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
        self.ok(
            &self.admin,
            "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id } } }",
            json!({ "venueId": venue, "guestId": guest, "type": "NON_PRIME", "diners": 4,
                    "bookingTime": time }),
        )
        .await["createBooking"]["booking"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn confirm(&self, booking: &str) {
        self.ok(
            &self.gm,
            "mutation($input: ConfirmBookingInput!) { confirmBooking(input: $input) { booking { id } } }",
            json!({ "bookingId": booking }),
        )
        .await;
    }

    async fn edit_notes(&self, booking: &str, notes: &str) {
        self.ok(
            &self.gm,
            "mutation($input: UpdateBookingInput!) { updateBooking(input: $input) { booking { id } } }",
            json!({ "bookingId": booking, "notes": notes }),
        )
        .await;
    }

    async fn cancel(&self, booking: &str) {
        self.ok(
            &self.gm,
            "mutation($input: CancelBookingInput!) { cancelBooking(input: $input) { booking { id } } }",
            json!({ "bookingId": booking, "reason": "Plans changed" }),
        )
        .await;
    }

    /// A connection of `token` with `bookingChanged` subscribed as id "1".
    async fn subscribe(&self, token: &str, variables: Value) -> Ws {
        subscribe_at(&self.app, token, variables).await
    }
}

async fn subscribe_at(app: &TestApp, token: &str, variables: Value) -> Ws {
    let mut ws = app.ws(Some(token)).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.subscribe("1", BOOKING_CHANGED, variables).await;
    ws
}

/// Waits until at least `n` feeds listen on the replica at `addr`: a feed without `after`
/// gets the changes committed once it listens (see [`TestApp::subscribers_at_least`]).
async fn replica_subscribers_at_least(addr: std::net::SocketAddr, n: usize) {
    eventually(
        &format!("{n} live subscription(s) on the replica"),
        Duration::from_secs(10),
        async || (subscribers(&format!("http://{addr}/metrics")).await >= n).then_some(()),
    )
    .await
}

/// The next `bookingChanged` payload, failing on anything else.
async fn change(ws: &mut Ws) -> Value {
    let message = ws.next_json().await;
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"].get("errors").is_none(), "{message}");
    message["payload"]["data"]["bookingChanged"].clone()
}

/// The code of a subscription refused when it starts (a `next` carrying the error, then
/// `complete`).
async fn refusal(ws: &mut Ws) -> String {
    let refused = ws.next_json().await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(refused["payload"]["data"], Value::Null, "{refused}");
    let code = refused["payload"]["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ws.next_json().await["type"], "complete");
    code
}

/// Nothing arrives for a while.
async fn quiet(ws: &mut Ws) {
    if let Some(frame) = ws.next_within(Duration::from_millis(700)).await {
        panic!("expected nothing, got {frame:?}");
    }
}

#[tokio::test]
async fn a_missing_or_bad_token_closes_the_socket_with_4403() {
    let app = TestApp::empty().await;
    for token in [None, Some("not-a-token")] {
        let mut ws = app.ws(token).await;
        match ws.next_within(Duration::from_secs(10)).await {
            Some(Frame::Closed(code, reason)) => {
                assert_eq!(code, 4403, "{reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("expected a 4403 close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_subscriber_gets_the_changes_of_the_venues_they_see_and_nothing_else() {
    let w = world().await;
    let mut gm = w.subscribe(&w.gm, json!({})).await;
    let mut confirmed_only = w
        .subscribe(&w.coordinator.token, json!({ "statuses": ["CONFIRMED"] }))
        .await;
    w.app.subscribers_at_least(2).await;

    // A booking at the first venue (auto-confirmed): only the coordinator sees it.
    let elsewhere = w.book(&w.first).await;
    let seen = change(&mut confirmed_only).await;
    assert_eq!(seen["booking"]["id"], elsewhere.as_str());
    assert_eq!(seen["action"], "CREATED");
    assert_eq!(seen["booking"]["status"], "CONFIRMED");

    // A booking at gm's venue: created PENDING, then confirmed, then edited.
    let booking = w.book(&w.last).await;
    let created = change(&mut gm).await;
    assert_eq!(
        created["booking"]["id"],
        booking.as_str(),
        "gm never sees the first venue"
    );
    assert_eq!(created["action"], "CREATED");
    assert_eq!(created["previousStatus"], Value::Null);
    assert_eq!(created["booking"]["status"], "PENDING");
    assert_eq!(created["booking"]["venue"]["id"], w.last.as_str());
    w.confirm(&booking).await;
    let confirmed = change(&mut gm).await;
    assert_eq!(confirmed["action"], "STATUS_CHANGED");
    assert_eq!(confirmed["previousStatus"], "PENDING");
    assert_eq!(confirmed["booking"]["status"], "CONFIRMED");
    assert!(
        confirmed["cursor"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > created["cursor"].as_str().unwrap().parse::<i64>().unwrap()
    );
    w.edit_notes(&booking, "Birthday").await;
    let edited = change(&mut gm).await;
    assert_eq!(edited["action"], "UPDATED");
    assert_eq!(edited["booking"]["notes"], "Birthday");
    // The coordinator cannot see gm's venue at all.
    quiet(&mut confirmed_only).await;

    // Asking for a venue you cannot see is refused at subscribe time.
    let mut ws = w.app.ws(Some(&w.gm)).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.subscribe("2", BOOKING_CHANGED, json!({ "venues": [w.first] }))
        .await;
    assert_eq!(refusal(&mut ws).await, "NOT_FOUND");
}

/// A gauge of the server's `/metrics`.
async fn gauge(w: &World, name: &str) -> usize {
    prima_tests::gauge(&w.app.url("/metrics"), name).await
}

#[tokio::test]
async fn identical_subscriptions_of_one_user_share_one_feed_and_each_gets_every_change() {
    let w = world().await;
    let venue = json!({ "venues": [w.last] });
    // Three sockets of gm with the same subscription, one with other variables, one that
    // resumes from a cursor (its own replay), and the same subscription of another user.
    let mut same = Vec::new();
    for _ in 0..3 {
        same.push(w.subscribe(&w.gm, venue.clone()).await);
    }
    let mut pending = w
        .subscribe(
            &w.gm,
            json!({ "venues": [w.last], "statuses": ["PENDING"] }),
        )
        .await;
    let mut resuming = w
        .subscribe(&w.gm, json!({ "venues": [w.last], "after": "0" }))
        .await;
    let other = w.app.user_with_role(&w.last, Role::Admin).await.token;
    let mut other = w.subscribe(&other, venue.clone()).await;
    w.app.subscribers_at_least(6).await;
    assert_eq!(gauge(&w, "prima_subscribers").await, 6);
    assert_eq!(
        gauge(&w, "prima_event_feeds").await,
        4,
        "the three identical ones share a feed"
    );
    assert_eq!(gauge(&w, "prima_shared_subscriptions").await, 3);

    let booking = w.book(&w.last).await;
    let mut created = Vec::new();
    for ws in same
        .iter_mut()
        .chain([&mut pending, &mut resuming, &mut other])
    {
        let seen = change(ws).await;
        assert_eq!(seen["booking"]["id"], booking.as_str());
        assert_eq!(seen["action"], "CREATED");
        created.push(seen);
    }
    assert!(
        created.iter().all(|seen| *seen == created[0]),
        "{created:?}"
    );

    // One leaves; the others go on, each getting every change once.
    same.pop().unwrap().close().await;
    w.confirm(&booking).await;
    for ws in same.iter_mut().chain([&mut resuming, &mut other]) {
        let seen = change(ws).await;
        assert_eq!(seen["action"], "STATUS_CHANGED");
        assert_eq!(seen["booking"]["status"], "CONFIRMED");
    }
    quiet(&mut pending).await;
    for ws in same.iter_mut() {
        quiet(ws).await;
    }
    eventually(
        "the subscriber that left is uncounted",
        Duration::from_secs(10),
        async || (gauge(&w, "prima_subscribers").await == 5).then_some(()),
    )
    .await;

    // When the last of them leaves, the shared execution and its feed stop.
    for ws in same {
        ws.close().await;
    }
    eventually(
        "the shared execution stops",
        Duration::from_secs(10),
        async || (gauge(&w, "prima_event_feeds").await == 3).then_some(()),
    )
    .await;
    assert_eq!(gauge(&w, "prima_shared_subscriptions").await, 2);
    assert_eq!(gauge(&w, "prima_subscribers").await, 3);

    // A new identical subscription starts afresh and gets the next change.
    let mut again = w.subscribe(&w.gm, venue).await;
    w.app.subscribers_at_least(4).await;
    w.edit_notes(&booking, "Window seat").await;
    assert_eq!(change(&mut again).await["booking"]["notes"], "Window seat");
    assert_eq!(change(&mut other).await["booking"]["notes"], "Window seat");
}

#[tokio::test]
async fn resuming_after_a_cursor_replays_every_missed_change_once_and_in_order() {
    let w = world().await;
    let venues = json!({ "venues": [w.last] });
    let mut ws = w.subscribe(&w.gm, venues.clone()).await;
    w.app.subscribers_at_least(1).await;
    let booking = w.book(&w.last).await;
    let first = change(&mut ws).await;
    ws.close().await;

    // Missed while away: confirmed, edited, cancelled; and another booking.
    w.confirm(&booking).await;
    w.edit_notes(&booking, "Window").await;
    w.cancel(&booking).await;
    let other = w.book(&w.last).await;

    let mut ws = w
        .subscribe(
            &w.gm,
            json!({ "venues": [w.last], "after": first["cursor"] }),
        )
        .await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(change(&mut ws).await);
    }
    let actions: Vec<(&str, &str)> = got
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap(),
                c["booking"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("STATUS_CHANGED", booking.as_str()),
            ("UPDATED", booking.as_str()),
            ("STATUS_CHANGED", booking.as_str()),
            ("CREATED", other.as_str()),
        ]
    );
    let cursors: Vec<i64> = got
        .iter()
        .map(|c| c["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    // Then live, with nothing replayed twice.
    let live = w.book(&w.last).await;
    let next = change(&mut ws).await;
    assert_eq!(next["booking"]["id"], live.as_str());
    assert!(next["cursor"].as_str().unwrap().parse::<i64>().unwrap() > cursors[3]);
    quiet(&mut ws).await;

    // A cursor that is not one is refused.
    let mut bad = w.app.ws(Some(&w.gm)).await;
    assert_eq!(bad.next_json().await["type"], "connection_ack");
    bad.subscribe("1", BOOKING_CHANGED, json!({ "after": "yesterday" }))
        .await;
    assert_eq!(refusal(&mut bad).await, "BAD_USER_INPUT");
}

#[tokio::test]
async fn losing_the_venue_completes_the_subscription() {
    let w = world().await;
    let mut coordinator = w
        .subscribe(&w.coordinator.token, json!({ "venues": [w.first] }))
        .await;
    w.app.subscribers_at_least(1).await;
    let coordinator_id = w.coordinator.id.clone();
    w.ok(
        &w.admin,
        "mutation($input: RevokeVenueAccessInput!) { revokeVenueAccess(input: $input) { user { id } } }",
        json!({ "venueId": w.first, "userId": coordinator_id }),
    )
    .await;
    let ended = coordinator.next_json().await;
    assert_eq!(ended["type"], "complete", "{ended}");
    assert_eq!(ended["id"], "1");
    // Nothing of the venue reaches them afterwards.
    w.book(&w.first).await;
    quiet(&mut coordinator).await;
}

#[tokio::test]
async fn a_user_suspended_while_connected_loses_their_subscriptions_and_operations() {
    let w = world().await;
    let mut ws = w.subscribe(&w.coordinator.token, json!({})).await;
    w.app.subscribers_at_least(1).await;
    ws.subscribe("q", "{ me { user { email } } }", json!({}))
        .await;
    let me = ws.next_json().await;
    assert_eq!(
        me["payload"]["data"]["me"]["user"]["email"],
        w.coordinator.email.as_str(),
        "{me}"
    );
    assert_eq!(ws.next_json().await["type"], "complete");
    w.app.suspend(&w.coordinator).await;
    let ended = ws.next_json().await;
    assert_eq!(
        (ended["type"].as_str(), ended["id"].as_str()),
        (Some("complete"), Some("1")),
        "{ended}"
    );
    // The next operation on the same socket is refused like an HTTP request would be.
    ws.subscribe("q2", "{ me { user { email } } }", json!({}))
        .await;
    let refused = ws.next_json().await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
}

#[tokio::test]
async fn a_change_made_through_one_replica_reaches_a_subscriber_of_another() {
    let w = world().await;
    let replica = w.app.replica().await;
    let mut ws = Ws::connect(replica.addr, Some(&w.gm)).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.subscribe("1", BOOKING_CHANGED, json!({})).await;
    replica_subscribers_at_least(replica.addr, 1).await;
    let booking = w.book(&w.last).await;
    let seen = change(&mut ws).await;
    assert_eq!(seen["booking"]["id"], booking.as_str());
    w.confirm(&booking).await;
    assert_eq!(change(&mut ws).await["booking"]["status"], "CONFIRMED");
    replica.stop().await;
}

const PROGRESS: &str = "subscription($id: ID!) { incentiveProgressChanged(incentiveId: $id) {
    cursor justAchieved progress { currentValue targetValue percentComplete status promoter { id } } } }";

const LEADERBOARD: &str =
    "subscription($id: ID!) { incentiveLeaderboard(incentiveId: $id, top: 5) {
    cursor entries { rank currentValue promoter { id } } } }";

#[tokio::test]
async fn progress_and_leaderboard_follow_the_bookings_of_a_programme() {
    let w = world().await;
    // A BOOKING_COUNT programme at gm's venue, led by one of its two participants.
    let leading = w.app.promoter(&w.last).create().await;
    let trailing = w.app.promoter(&w.last).create().await;
    let id = w
        .app
        .incentive(&w.last)
        .with_participant(&leading, 3)
        .with_participant(&trailing, 1)
        .create()
        .await;
    let data = w
        .app
        .query_ok(
            &w.gm,
            "query($v: ID!) { venue(id: $v) { incentives(first: 10) { edges { node {
                id type periodEnd leaderboard(first: 1) { edges { node { currentValue promoter { id } } } }
            } } } } }",
            json!({ "v": w.last }),
        )
        .await;
    let programme = data["venue"]["incentives"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["id"] == id.as_str())
        .expect("the venue's programme")
        .clone();
    assert_eq!(programme["type"], "BOOKING_COUNT");
    let leader = &programme["leaderboard"]["edges"][0]["node"];
    let promoter = leader["promoter"]["id"].as_str().unwrap().to_owned();
    assert_eq!(promoter, leading, "the leader leads: {programme}");
    let before: f64 = leader["currentValue"].as_str().unwrap().parse().unwrap();

    let mut progress = w.app.ws(Some(&w.gm)).await;
    assert_eq!(progress.next_json().await["type"], "connection_ack");
    progress.subscribe("p", PROGRESS, json!({ "id": id })).await;
    let mut board = w.app.ws(Some(&w.gm)).await;
    assert_eq!(board.next_json().await["type"], "connection_ack");
    board.subscribe("b", LEADERBOARD, json!({ "id": id })).await;
    let first = board.next_json().await;
    assert_eq!(first["type"], "next", "{first}");
    let standings = &first["payload"]["data"]["incentiveLeaderboard"];
    assert_eq!(
        standings["cursor"],
        Value::Null,
        "the standings at subscribe time"
    );
    assert_eq!(standings["entries"][0]["rank"], 1);
    // Both feeds listen before the booking is made.
    w.app.subscribers_at_least(2).await;

    // A booking by the leader inside the period, confirmed: +1 booking.
    let end = chrono::DateTime::parse_from_rfc3339(programme["periodEnd"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let time = chrono::Utc::now() + (end - chrono::Utc::now()) / 2;
    let guest = w
        .ok(
            &w.admin,
            "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
            json!({ "venueId": w.last, "firstName": "Kim", "lastName": "Ito",
                    "email": format!("{}@example.com", uuid::Uuid::new_v4()) }),
        )
        .await["createGuest"]["guest"]["id"]
        .clone();
    let booking = w
        .ok(
            &w.gm,
            "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id } } }",
            json!({ "venueId": w.last, "guestId": guest, "promoterId": promoter,
                    "type": "NON_PRIME", "diners": 4, "bookingTime": time.to_rfc3339() }),
        )
        .await["createBooking"]["booking"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.confirm(&booking).await;

    let change = progress.next_json().await;
    let moved = &change["payload"]["data"]["incentiveProgressChanged"];
    assert_eq!(
        moved["progress"]["promoter"]["id"],
        promoter.as_str(),
        "{change}"
    );
    let after: f64 = moved["progress"]["currentValue"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(after, before + 1.0);
    let pushed = board.next_json().await;
    let update = &pushed["payload"]["data"]["incentiveLeaderboard"];
    assert_eq!(update["cursor"], moved["cursor"], "{pushed}");
    assert_eq!(update["entries"][0]["promoter"]["id"], promoter.as_str());
    let top: f64 = update["entries"][0]["currentValue"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(top, after);

    // Someone without financial access to the venue cannot subscribe.
    let mut refused = w.app.ws(Some(&w.coordinator.token)).await;
    assert_eq!(refused.next_json().await["type"], "connection_ack");
    refused
        .subscribe("x", LEADERBOARD, json!({ "id": id }))
        .await;
    assert_eq!(refusal(&mut refused).await, "NOT_FOUND");
}

/// A Redis server of this test's own, on a free port, keeping nothing on disk.
struct PrivateRedis {
    child: tokio::process::Child,
}

impl PrivateRedis {
    async fn start(port: u16) -> PrivateRedis {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed for this test (it is on the CI machine)");
        eventually(
            &format!("redis-server to accept on port {port}"),
            Duration::from_secs(5),
            async || {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(drop)
            },
        )
        .await;
        PrivateRedis { child }
    }

    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn events_made_while_redis_was_down_all_arrive_in_order_once_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = PrivateRedis::start(port).await;
    let w = world_on(
        TestApp::empty_with(ServeArgs {
            redis_url: Some(format!("redis://127.0.0.1:{port}")),
            ..ServeArgs::default()
        })
        .await,
    )
    .await;
    let replica = w.app.replica().await;
    let last = w.last.clone();
    let mut ws = Ws::connect(replica.addr, Some(&w.gm)).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.subscribe("1", BOOKING_CHANGED, json!({})).await;
    replica_subscribers_at_least(replica.addr, 1).await;
    let before = w.book(&last).await;
    assert_eq!(change(&mut ws).await["booking"]["id"], before.as_str());

    // Redis goes away; bookings keep being made through the other replica.
    redis.stop().await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(w.book(&last).await);
    }
    let redis = PrivateRedis::start(port).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            change(&mut ws).await["booking"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(got, made, "every event, once, in order");
    // And live again through the restarted Redis.
    let after = w.book(&last).await;
    assert_eq!(change(&mut ws).await["booking"]["id"], after.as_str());
    quiet(&mut ws).await;
    replica.stop().await;
    redis.stop().await;
}
