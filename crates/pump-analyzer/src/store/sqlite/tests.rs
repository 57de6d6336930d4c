//! Tests of the SQLite backend: chunked inserts, retention, group commits, the syncer, the
//! reader pool, upgrades and file modes.

use std::time::Instant;

use pump_engine::Difficulty;

use super::ingest::INSERT_BETS;
use super::*;
use crate::ingest::message::{Heartbeat, Message};
use crate::store::model::{BetOrder, BetQuery, Round};
use crate::store::{CommitCounts, StreamKey};

fn heartbeats(from: i64, count: i64) -> Vec<Message> {
    (from..from + count)
        .map(|nonce| {
            Message::Heartbeat(Heartbeat {
                nonce,
                round_result: 1.63,
                client_seed: "c".repeat(200),
                server_seed_hashed: "h".into(),
            })
        })
        .collect()
}

fn bet(id: &str, nonce: i64, client_seed: &str) -> Message {
    Message::Bet(NewBet {
        antebot_bet_id: id.into(),
        nonce,
        amount: 1.0,
        payout: 2.0,
        difficulty: Difficulty::Medium,
        client_seed: client_seed.into(),
        server_seed_hashed: "h".into(),
        round_result: 1.0 + (nonce % 7) as f64,
        payout_multiplier: 2.0,
        round_target: Some(2.0),
        date_time: None,
    })
}

/// The default options: those of a server started without settings.
fn options() -> StoreOptions {
    StoreOptions { rounds_retention: 1_000_000, sqlite_sync: SqliteSync::Background, max_pages: None }
}

/// A fresh store in a directory of its own, which the test removes when it ends.
fn scratch_store(name: &str, max_pages: Option<u64>) -> (std::path::PathBuf, SqliteStore) {
    scratch_store_on(name, StoreOptions { max_pages, ..options() }, Hub::new())
}

fn scratch_store_on(name: &str, options: StoreOptions, hub: Hub) -> (std::path::PathBuf, SqliteStore) {
    let dir = std::env::temp_dir().join(format!("pump-{name}-{}", crate::security::random_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join(format!("{name}.db")), options, hub).unwrap();
    (dir, store)
}

/// A seeded pseudo-random source for the randomised tests: `next(bound)` is in `0..bound`.
fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |bound| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    }
}

async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
    store.read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?)).await.unwrap()
}

#[tokio::test]
async fn the_database_and_its_log_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = scratch_store("modes", None);
    store.ingest(vec![bet("b1", 1, "c")]).await.unwrap();
    let mode = |suffix: &str| {
        let file = dir.join(format!("modes.db{suffix}"));
        std::fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o600);
    assert_eq!(mode("-wal"), 0o600);
    assert_eq!(mode("-shm"), 0o600);
    drop(store);

    // A database made world-readable by an older build is tightened when opened.
    let path = dir.join("modes.db");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&path, options(), Hub::new()).unwrap();
    assert_eq!(mode(""), 0o600);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A read whose work panics, and reads whose callers give up (their futures dropped while the
/// blocking work runs, as when a client resets its connection), still return their
/// connections: afterwards every connection is back and a read that needs all of them at once
/// is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_and_cancelled_reads_give_their_connections_back() {
    let (dir, store) = scratch_store("reader-pool", None);
    let store = Arc::new(store);
    for _ in 0..(READERS * 2) {
        let outcome = store.read(|_| -> Result<(), StoreError> { panic!("a read that panics") }).await;
        assert!(matches!(outcome, Err(StoreError::Internal(_))), "{outcome:?}");
    }
    assert_eq!(store.idle_readers(), READERS);

    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    for _ in 0..(READERS * 10) {
        let started = started_tx.clone();
        let read = store.read(move |c| {
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(5));
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
        });
        // Give the read time to take a connection, then drop it mid-flight.
        let _ = tokio::time::timeout(Duration::from_millis(1), read).await;
    }
    drop(started_tx);
    while started_rx.recv().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.idle_readers() < READERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.idle_readers(), READERS, "every connection is back in the pool");

    // More concurrent reads than connections: they wait for one instead of failing.
    let reads = (0..(READERS * 8)).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .read(|c| {
                    std::thread::sleep(Duration::from_millis(2));
                    Ok(c.query_row("SELECT 7", [], |r| r.get::<_, i64>(0))?)
                })
                .await
        })
    });
    for read in reads.collect::<Vec<_>>() {
        assert_eq!(read.await.unwrap().unwrap(), 7);
    }
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Bets go in as multi-row INSERTs (64 + 16 + 4 + 1 rows here). Ids follow message order,
/// and a chunk holding repeats (of stored bets and within itself) still answers each bet
/// right: the first copy of a new id is accepted with the id it was stored under.
#[tokio::test]
async fn chunked_bets_keep_message_order_and_tell_repeats_apart() {
    let (dir, store) = scratch_store("chunks", None);

    let first: Vec<Message> = (1..=85).map(|n| bet(&format!("b{n}"), n, "c")).collect();
    let outcomes = store.ingest(first).await.unwrap();
    assert!(outcomes.iter().all(|o| o.accepted));
    let ids: Vec<i64> = outcomes.iter().map(|o| o.bet_id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "consecutive ids in message order: {ids:?}");
    let stored: Vec<(i64, i64)> = store
        .read(|c| {
            let mut s = c.prepare("SELECT id, nonce FROM bets ORDER BY id")?;
            Ok(s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(stored, ids.iter().zip(1..).map(|(&id, nonce)| (id, nonce)).collect::<Vec<_>>());

    // 70 bets (a chunk of 64, then 4, 1, 1): new ones, repeats of stored ids, a repeat of a
    // new id inside the same chunk, and a second stream in the middle of the run.
    let mut second: Vec<Message> = Vec::new();
    for n in 0..70 {
        second.push(match n {
            5 | 40 => bet(&format!("b{}", n + 1), n + 1, "c"),
            20 => bet("n10", 500, "c"),
            30 => bet("other", 7, "d"),
            66 => bet("n66", 1000, "c"),
            69 => bet("n66", 1001, "c"),
            _ => bet(&format!("n{n}"), 100 + n, "c"),
        });
    }
    let outcomes = store.ingest(second).await.unwrap();
    let accepted: Vec<usize> = (0..70).filter(|&n| outcomes[n].accepted).collect();
    let refused: Vec<usize> = (0..70).filter(|&n| !outcomes[n].accepted).collect();
    assert_eq!(refused, vec![5, 20, 40, 69], "repeats are not accepted");
    assert!(refused.iter().all(|&n| outcomes[n].bet_id.is_none()));
    let new_ids: Vec<i64> = accepted.iter().map(|&n| outcomes[n].bet_id.unwrap()).collect();
    assert!(new_ids.windows(2).all(|w| w[1] > w[0]), "ids rise in message order: {new_ids:?}");
    assert!(new_ids[0] > *ids.last().unwrap());
    for &n in &accepted {
        let id = outcomes[n].bet_id.unwrap();
        let (client, bet_id): (String, String) = store
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT s.client_seed, b.antebot_bet_id FROM bets b JOIN streams s ON s.pk = b.stream_pk
                     WHERE b.id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap();
        let expected = match n {
            30 => ("d", "other".to_string()),
            66 => ("c", "n66".to_string()),
            _ => ("c", format!("n{n}")),
        };
        assert_eq!((client.as_str(), bet_id), (expected.0, expected.1), "bet {n}");
    }
    assert_eq!(count(&store, "SELECT count(*) FROM bets").await, 85 + 66);
    assert_eq!(count(&store, "SELECT sum(total_bets) FROM streams").await, 85 + 66);
    // Every message's round, once per (stream, nonce): 85, then 68 of the 70 (the repeats of
    // b6 and b41 carry nonces already recorded).
    // (A stored bet is its round's record; `rounds` holds the others.)
    let rounds = "SELECT count(*) FROM (SELECT stream_pk, nonce FROM rounds UNION SELECT stream_pk, nonce FROM bets)";
    assert_eq!(count(&store, rounds).await, 85 + 68);
    assert_eq!(count(&store, "SELECT sum(rounds_count) FROM streams").await, 85 + 68);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ingest requests queued together run as one `ingest`, yet each is answered as if it ran
/// alone: repeats across requests are refused in queue order, heartbeats see the rounds of
/// bets before them, and a request that fails is replayed alone, failing only itself.
#[tokio::test]
async fn ingest_requests_of_one_group_run_together_and_answer_alone() {
    let (dir, store) = scratch_store("together", None);
    let store = Arc::new(store);
    let heartbeat = |nonce, client_seed: &str| {
        Message::Heartbeat(Heartbeat {
            nonce,
            round_result: 1.5,
            client_seed: client_seed.into(),
            server_seed_hashed: "h".into(),
        })
    };
    let broken = || match bet("nan", 50, "c") {
        Message::Bet(mut b) => {
            b.amount = f64::NAN; // stored as NULL: the NOT NULL amount makes this request fail
            Message::Bet(b)
        }
        other => other,
    };
    for with_failure in [false, true] {
        let round = if with_failure { "2" } else { "1" };
        let seed = |s: &str| format!("{s}{round}");
        let CommitCounts { commits: commits_before, writes: writes_before, .. } = store.commit_stats().read();
        // Hold the writer so that the requests below queue up and form one group.
        let (held, release) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |_| {
                        let _ = release.recv_timeout(Duration::from_secs(5));
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut requests = vec![
            vec![bet("x1", 1, &seed("c")), bet("x2", 2, &seed("c"))],
            vec![bet("x2", 2, &seed("c")), bet("y1", 1, &seed("d"))],
            vec![heartbeat(1, &seed("c")), heartbeat(99, &seed("c"))],
        ];
        if with_failure {
            requests.insert(1, vec![broken()]);
        }
        let pending: Vec<_> = requests
            .into_iter()
            .map(|messages| {
                let store = store.clone();
                tokio::spawn(async move { store.ingest(messages).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        held.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        let mut answers = Vec::new();
        for request in pending {
            answers.push(request.await.unwrap());
        }
        let CommitCounts { commits, writes, .. } = store.commit_stats().read();
        if with_failure {
            assert!(answers.remove(1).is_err(), "the broken request fails");
        } else {
            // The held job's commit, then one for the three requests together.
            assert_eq!((commits - commits_before, writes - writes_before), (2, 4));
        }
        let answers: Vec<Vec<IngestOutcome>> = answers.into_iter().map(Result::unwrap).collect();
        let accepted: Vec<Vec<bool>> = answers.iter().map(|a| a.iter().map(|o| o.accepted).collect()).collect();
        // The first heartbeat's round came with bet x1, earlier in the same group.
        assert_eq!(accepted, vec![vec![true, true], vec![false, true], vec![false, true]]);
        let ids: Vec<i64> = [answers[0][0].bet_id, answers[0][1].bet_id, answers[1][1].bet_id]
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert!(ids.windows(2).all(|w| w[1] > w[0]), "ids in queue order: {ids:?}");
        assert_eq!(answers[1][0].bet_id, None);
        assert_eq!(answers[0][0].stream_id, answers[1][0].stream_id);
    }
    assert_eq!(count(&store, "SELECT count(*) FROM bets").await, 6);
    assert_eq!(count(&store, "SELECT count(*) FROM bets WHERE antebot_bet_id = 'nan'").await, 0);
    assert_eq!(count(&store, "SELECT sum(total_bets) FROM streams").await, 6);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stream's bets in arrival order come from its id range of the table, which other
/// streams' bets interleave: `order=id_desc` pages (with and without a filter) and tails must
/// hold exactly that stream's bets, in id order, whatever lies between them.
#[tokio::test]
async fn arrival_order_reads_skip_the_bets_of_interleaved_streams() {
    let (dir, store) = scratch_store("range", None);
    let hard = |mut m: Message| {
        if let Message::Bet(b) = &mut m {
            b.difficulty = Difficulty::Hard;
        }
        m
    };
    // Streams "c" and "d" interleave within and across requests; "e" has bets only before
    // them and "f" none (a heartbeat alone).
    store.ingest((1..=4).map(|n| bet(&format!("e{n}"), n, "e")).collect()).await.unwrap();
    let mut expected: HashMap<&str, Vec<(i64, bool)>> = HashMap::new();
    let mut stream_ids: HashMap<&str, Uuid> = HashMap::new();
    for round in 0..12i64 {
        let mut job = Vec::new();
        for k in 0..(round % 4 + 1) {
            let seed = if (round + k) % 3 == 0 { "d" } else { "c" };
            let nonce = round * 10 + k;
            let m = bet(&format!("{seed}{nonce}"), nonce, seed);
            job.push(if nonce % 2 == 0 { hard(m) } else { m });
        }
        let seeds: Vec<&str> = job
            .iter()
            .map(|m| match m {
                Message::Bet(b) if b.client_seed == "d" => "d",
                _ => "c",
            })
            .collect();
        let hard_flags: Vec<bool> =
            job.iter().map(|m| matches!(m, Message::Bet(b) if b.difficulty == Difficulty::Hard)).collect();
        let outcomes = store.ingest(job).await.unwrap();
        for ((outcome, seed), hard) in outcomes.iter().zip(seeds).zip(hard_flags) {
            expected.entry(seed).or_default().push((outcome.bet_id.unwrap(), hard));
            stream_ids.insert(seed, outcome.stream_id);
        }
    }
    let f = store
        .ingest(vec![Message::Heartbeat(Heartbeat {
            nonce: 1,
            round_result: 1.5,
            client_seed: "f".into(),
            server_seed_hashed: "h".into(),
        })])
        .await
        .unwrap()[0]
        .stream_id;
    let key_of = |id: Uuid| {
        let store = &store;
        async move { store.stream_key(id).await.unwrap().unwrap() }
    };
    for (seed, id) in [("c", stream_ids["c"]), ("d", stream_ids["d"])] {
        let key = key_of(id).await;
        let all: Vec<i64> = expected[seed].iter().map(|&(id, _)| id).collect();
        let hard: Vec<i64> = expected[seed].iter().filter(|&&(_, h)| h).map(|&(id, _)| id).collect();
        let page = |offset: i64, difficulty: Option<&str>| BetQuery {
            limit: 5,
            offset,
            min_multiplier: None,
            difficulty: difficulty.map(|d| d.parse().unwrap()),
            order: BetOrder::IdDesc,
        };
        for (difficulty, ids) in [(None, &all), (Some("hard"), &hard)] {
            let mut newest_first = ids.clone();
            newest_first.reverse();
            let mut seen = Vec::new();
            for offset in (0..newest_first.len() as i64 + 5).step_by(5) {
                let got = store.bets(key, page(offset, difficulty)).await.unwrap();
                assert_eq!(got.total, ids.len() as i64, "{seed} {difficulty:?}");
                assert!(got.bets.iter().all(|b| b.stream_id == id));
                seen.extend(got.bets.iter().map(|b| b.id));
            }
            assert_eq!(seen, newest_first, "{seed} {difficulty:?}: id_desc pages");
        }
        // Tails from before the stream, from inside its range, and past its end.
        for since in [0, all[0], all[all.len() / 2], *all.last().unwrap()] {
            let tail = store.bets_since(Some(key.pk), since, 4).await.unwrap();
            let after: Vec<i64> = all.iter().copied().filter(|&id| id > since).collect();
            let got: Vec<i64> = tail.bets.iter().map(|b| b.id).collect();
            assert_eq!(got, after.iter().copied().take(4).collect::<Vec<_>>(), "{seed} tail since {since}");
            assert_eq!(tail.has_more, after.len() > 4);
            assert_eq!(tail.last_id, got.last().copied().unwrap_or(since));
        }
    }
    let empty = key_of(f).await;
    let page = BetQuery { limit: 5, offset: 0, min_multiplier: None, difficulty: None, order: BetOrder::IdDesc };
    assert!(store.bets(empty, page).await.unwrap().bets.is_empty());
    let tail = store.bets_since(Some(empty.pk), 0, 4).await.unwrap();
    assert!(tail.bets.is_empty() && !tail.has_more && tail.last_id == 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Upgrading a database made before the bet-range columns and the folded difficulty counts
/// fills both from the bets it holds.
#[test]
fn upgrades_fill_bet_ranges_and_the_multiplier_rows_last_bets() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrations().to_version(&mut conn, 4).unwrap();
    conn.execute_batch(
        "INSERT INTO streams (pk, id, server_seed_hashed, client_seed, created_at, last_seen_at)
             VALUES (1, 'a', 'h', 'c', 0, 0), (2, 'b', 'h', 'd', 0, 0), (3, 'e', 'h', 'e', 0, 0);
         INSERT INTO bets (id, stream_pk, antebot_bet_id, received_at, nonce, amount, payout,
                           payout_multiplier, difficulty, round_result)
             VALUES (1, 1, 'x', 0, 1, 1, 0, 0, 'easy', 1), (2, 2, 'y', 0, 1, 1, 0, 0, 'easy', 1),
                    (3, 1, 'z', 0, 2, 1, 0, 0, 'easy', 1), (5, 1, 'v', 0, 3, 1, 0, 0, 'hard', 2),
                    (7, 1, 'w', 0, 4, 1, 0, 0, 'easy', 1);
         INSERT INTO stream_multipliers (stream_pk, difficulty, mult_cents, bets)
             VALUES (1, 'easy', 100, 3), (1, 'hard', 200, 1), (2, 'easy', 100, 1);
         INSERT INTO stream_difficulties (stream_pk, difficulty, bets, last_bet)
             VALUES (1, 'easy', 3, 7), (1, 'hard', 1, 5), (2, 'easy', 1, 2);",
    )
    .unwrap();
    migrations().to_latest(&mut conn).unwrap();
    let rows: Vec<(i64, String, i64, i64)> = conn
        .prepare("SELECT stream_pk, difficulty, bets, last_bet FROM stream_multipliers ORDER BY stream_pk, difficulty")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let row = |pk, d: &str, bets, last| (pk, d.to_string(), bets, last);
    assert_eq!(rows, vec![row(1, "easy", 3, 7), row(1, "hard", 1, 5), row(2, "easy", 1, 2)]);
    assert_eq!(reads::difficulty_of(&conn, 1).unwrap(), Some(Difficulty::Easy));
    let left: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'stream_difficulties'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    let ranges: Vec<(i64, Option<i64>, Option<i64>)> = conn
        .prepare("SELECT pk, first_bet_id, last_bet_id FROM streams ORDER BY pk")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ranges, vec![(1, Some(1), Some(7)), (2, Some(2), Some(2)), (3, None, None)]);
}

/// Migration 0008 computes `mult_cents` without `round()`: every stored bet keeps its value,
/// and the rebuilt index agrees with the table.
#[test]
fn upgrades_keep_every_bets_multiplier_in_cents() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrations().to_version(&mut conn, 7).unwrap();
    conn.execute("INSERT INTO streams (pk, id, server_seed_hashed, client_seed, created_at, last_seen_at) VALUES (1, 'a', 'h', 'c', 0, 0)", []).unwrap();
    let results = [0.0, 1.0, 1.005, 1.015, 2.675, 1066.73, 1066.735, 3_203_384.8, 0.004_999, 4.5e13];
    for (i, result) in results.iter().enumerate() {
        conn.execute(
            "INSERT INTO bets (stream_pk, antebot_bet_id, received_at, nonce, amount, payout, payout_multiplier,
                               difficulty, round_result) VALUES (1, ?1, 0, ?2, 1, 0, 0, 'easy', ?3)",
            params![format!("b{i}"), i as i64, result],
        )
        .unwrap();
    }
    let cents = |conn: &Connection| -> Vec<i64> {
        conn.prepare("SELECT mult_cents FROM bets ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = cents(&conn);
    migrations().to_latest(&mut conn).unwrap();
    assert_eq!(cents(&conn), before);
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let indexed: i64 = conn
        .query_row(
            "SELECT count(*) FROM bets INDEXED BY bets_by_multiplier WHERE stream_pk = 1 AND mult_cents = 320338480",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 1);
}

/// The multi-row INSERT of bets must not need a statement journal: it has no function call
/// (one would bring the journal back) and no constraint that aborts (`OR FAIL`), as read from
/// its program (`EXPLAIN`; `OE_Abort` is 2).
#[test]
fn bet_inserts_run_without_a_statement_journal() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrations().to_latest(&mut conn).unwrap();
    for text in INSERT_BETS.iter() {
        // Explained with its parameters unbound (`raw_query` does not insist on them).
        let mut explain = conn.prepare(&format!("EXPLAIN {text}")).unwrap();
        let mut rows = explain.raw_query();
        let mut program: Vec<(String, i64)> = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            program.push((row.get("opcode").unwrap(), row.get("p2").unwrap()));
        }
        assert!(program.iter().any(|(op, _)| op == "Insert"), "not an insert program: {program:?}");
        for (op, p2) in &program {
            assert!(op != "Function" && op != "PureFunc", "a function call in the bets INSERT: {op}");
            if op == "Halt" || op == "HaltIfNull" {
                assert_ne!(*p2, 2, "a constraint of the bets INSERT aborts: {op}");
            }
        }
    }
}

/// Before migration 0007 every bet also had a row in `rounds`, dropped only by the retention.
/// The upgrade keeps those rows and sets the floor where the retention had cut a stream's
/// bets; the merged rounds, and the retention afterwards, carry on from there.
#[tokio::test]
async fn upgrades_keep_the_rounds_of_older_bets_and_where_the_retention_cut_them() {
    let dir = std::env::temp_dir().join(format!("pump-upgrade-{}", crate::security::random_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        migrations().to_version(&mut conn, 6).unwrap();
        // Stream 1 was cut by a retention of 3: bets 1..=5, rows of 4, 5 and a heartbeat at 6.
        // Stream 2 was not: bets 1 and 2 with their rows, and a heartbeat at 3.
        conn.execute_batch(
            "INSERT INTO streams (pk, id, server_seed_hashed, client_seed, created_at, last_seen_at,
                                  rounds_count, last_observed_nonce)
                 VALUES (1, '6f1c0f6e-56b1-4c34-9d3c-7d0c4c1b1a01', 'h', 'c1', 0, 0, 3, 6),
                        (2, '6f1c0f6e-56b1-4c34-9d3c-7d0c4c1b1a02', 'h', 'c2', 0, 0, 3, 3);
             INSERT INTO bets (id, stream_pk, antebot_bet_id, received_at, nonce, amount, payout,
                               payout_multiplier, difficulty, round_result)
                 VALUES (1, 1, 'a1', 0, 1, 1, 0, 0, 'easy', 1), (2, 1, 'a2', 0, 2, 1, 0, 0, 'easy', 2),
                        (3, 1, 'a3', 0, 3, 1, 0, 0, 'easy', 3), (4, 1, 'a4', 0, 4, 1, 0, 0, 'easy', 4),
                        (5, 1, 'a5', 0, 5, 1, 0, 0, 'easy', 5), (6, 2, 'b1', 0, 1, 1, 0, 0, 'easy', 1),
                        (7, 2, 'b2', 0, 2, 1, 0, 0, 'easy', 2);
             INSERT INTO rounds (stream_pk, nonce, round_result)
                 VALUES (1, 4, 4), (1, 5, 5), (1, 6, 1.5), (2, 1, 1), (2, 2, 2), (2, 3, 1.5);",
        )
        .unwrap();
    }
    let options = StoreOptions { rounds_retention: 3, ..options() };
    let store = SqliteStore::open(&path, options, Hub::new()).unwrap();
    assert_eq!(count(&store, "SELECT rounds_floor FROM streams WHERE pk = 1").await, 4);
    assert_eq!(count(&store, "SELECT rounds_floor IS NULL FROM streams WHERE pk = 2").await, 1);
    let nonces = |rounds: Vec<Round>| rounds.iter().map(|r| r.nonce).collect::<Vec<_>>();
    assert_eq!(nonces(store.rounds(1, None, 10).await.unwrap()), [4, 5, 6]);
    assert_eq!(nonces(store.rounds(2, None, 10).await.unwrap()), [1, 2, 3]);

    // New bets are rounds without rows; each stream's oldest round goes.
    store.ingest(vec![bet("a7", 7, "c1"), bet("b4", 4, "c2")]).await.unwrap();
    assert_eq!(nonces(store.rounds(1, None, 10).await.unwrap()), [5, 6, 7]);
    assert_eq!(nonces(store.rounds(2, None, 10).await.unwrap()), [2, 3, 4]);
    assert_eq!(count(&store, "SELECT count(*) FROM rounds WHERE stream_pk = 1").await, 2);
    assert_eq!(count(&store, "SELECT rounds_floor FROM streams WHERE pk = 2").await, 2);
    assert_eq!(count(&store, "SELECT sum(rounds_count) FROM streams").await, 6);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rounds a stream shows, as a model: the first message to bring a nonce records its
/// round; after each commit the oldest rounds beyond the retention go, and a stored bet below
/// the lowest round kept is no round. Random heartbeats, new bets, repeated bet ids and second
/// bets at a nonce, in random jobs and under random retentions, leave the store showing the
/// model: the rounds view, its count, the cadence hits and every answer.
#[tokio::test]
async fn rounds_follow_the_model_through_random_messages_and_retentions() {
    use std::collections::{BTreeMap, HashSet};
    for seed in 1..=24u64 {
        let mut next = xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let retention = 1 + next(10) as i64;
        let options = StoreOptions { rounds_retention: retention as u64, ..options() };
        let (dir, store) = scratch_store_on("model", options, Hub::new());
        let (mut shown, mut floor) = (BTreeMap::<i64, f64>::new(), None::<i64>);
        let (mut ids, mut fresh_id) = (HashSet::<String>::new(), 0);
        for _job in 0..30 {
            let mut messages = Vec::new();
            let mut expected = Vec::new();
            for _ in 0..1 + next(6) {
                let nonce = next(40) as i64;
                let round_result = 1.0 + next(100_000) as f64 / 100.0;
                let kind = next(10);
                let message = if kind < 4 {
                    Message::Heartbeat(Heartbeat {
                        nonce,
                        round_result,
                        client_seed: "c".into(),
                        server_seed_hashed: "h".into(),
                    })
                } else {
                    let id = if kind < 8 || ids.is_empty() {
                        fresh_id += 1;
                        format!("b{fresh_id}")
                    } else {
                        format!("b{}", 1 + next(fresh_id))
                    };
                    let Message::Bet(mut b) = bet(&id, nonce, "c") else { unreachable!() };
                    b.round_result = round_result;
                    Message::Bet(b)
                };
                let stored = match &message {
                    Message::Bet(b) => ids.insert(b.antebot_bet_id.clone()),
                    Message::Heartbeat(_) => false,
                };
                // A stored bet below the floor is no round; anything else new is one.
                let below_floor = floor.is_some_and(|f| nonce < f);
                let new = !(shown.contains_key(&nonce) || (stored && below_floor));
                if new {
                    shown.insert(nonce, round_result);
                }
                expected.push(if matches!(message, Message::Bet(_)) { stored } else { new });
                messages.push(message);
            }
            let outcomes = store.ingest(messages).await.unwrap();
            let accepted: Vec<bool> = outcomes.iter().map(|o| o.accepted).collect();
            assert_eq!(accepted, expected, "seed {seed}");
            if shown.len() as i64 > retention {
                while shown.len() as i64 > retention {
                    shown.pop_first();
                }
                floor = shown.keys().next().copied();
            }
            let model: Vec<(i64, f64)> = shown.iter().map(|(&n, &r)| (n, r)).collect();
            let view: Vec<(i64, f64)> =
                store.rounds(1, None, 1000).await.unwrap().iter().map(|r| (r.nonce, r.round_result)).collect();
            assert_eq!(view, model, "seed {seed}, retention {retention}");
            let since = next(40) as i64 - 1;
            let limit = 1 + next(4) as usize;
            let after: Vec<(i64, f64)> = model.iter().filter(|(n, _)| *n > since).take(limit).copied().collect();
            let view: Vec<(i64, f64)> = store
                .rounds(1, Some(since), limit as i64)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.nonce, r.round_result))
                .collect();
            assert_eq!(view, after, "seed {seed}, since {since}, limit {limit}");
            assert_eq!(count(&store, "SELECT rounds_count FROM streams").await, model.len() as i64);
            let min = 1.0 + next(100_000) as f64 / 100.0;
            let key = StreamKey { pk: 1, id: outcomes[0].stream_id, last_observed_nonce: None };
            let scan = store.round_scan(key, min, 3).await.unwrap().scan;
            let hits: Vec<i64> = model.iter().filter(|(_, r)| cents(*r) >= cents(min)).map(|(n, _)| *n).collect();
            assert_eq!(scan.hits.iter().map(|r| r.nonce).collect::<Vec<_>>(), hits, "seed {seed}, min {min}");
            let recent: Vec<i64> = model.iter().rev().take(3).rev().map(|(n, _)| *n).collect();
            assert_eq!(scan.recent.iter().map(|r| r.nonce).collect::<Vec<_>>(), recent);
            assert_eq!(scan.first_nonce, model.first().map(|(n, _)| *n));
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Live bet events carry `distance_prev` from the writer's cache of each multiplier's last
/// nonce: it must give what the query over the whole stream gives, through bets out of nonce
/// order, repeated ids, several streams, and listeners leaving and coming back (bets stored
/// meanwhile are unseen by the cache).
#[tokio::test]
async fn live_distances_match_the_whole_stream_through_random_jobs() {
    let hub = Hub::new();
    let (dir, store) = scratch_store_on("distances", options(), hub.clone());
    let mut next = xorshift(0x2545_F491_4F6C_DD1D);
    // (client seed, cents, nonce) of every stored bet, and the ids used.
    let mut stored: Vec<(String, i64, i64)> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut listener = Some(hub.subscribe());
    let mut checked = 0;
    for job in 0..120 {
        if job % 40 == 20 {
            listener = None;
        } else if listener.is_none() && job % 40 == 30 {
            listener = Some(hub.subscribe());
        }
        let mut messages = Vec::new();
        for _ in 0..1 + next(12) {
            let client = format!("c{}", next(2));
            let id = format!("b{}", next(400));
            // Mostly rising nonces, as from a bot, some late ones.
            let nonce = if next(4) == 0 { 1 + next(300) as i64 } else { 300 + job * 20 + next(20) as i64 };
            let Message::Bet(mut b) = bet(&id, nonce, &client) else { unreachable!() };
            b.round_result = [1.0, 2.0, 3.5][next(3) as usize];
            if ids.insert((client.clone(), id)) {
                stored.push((client, cents(b.round_result), nonce));
            }
            messages.push(Message::Bet(b));
        }
        store.ingest(messages).await.unwrap();
        let Some(rx) = listener.as_mut() else { continue };
        while let Ok(event) = rx.try_recv() {
            let LiveEvent::Bet(record) = &*event else { continue };
            let client: String = store
                .read({
                    let id = record.stream_id.to_string();
                    move |c| Ok(c.query_row("SELECT client_seed FROM streams WHERE id = ?1", [id], |r| r.get(0))?)
                })
                .await
                .unwrap();
            let key = cents(record.round_result);
            let previous =
                stored.iter().filter(|(c, k, n)| *c == client && *k == key && *n < record.nonce).map(|s| s.2).max();
            assert_eq!(
                record.distance_prev,
                previous.map(|p| record.nonce - p),
                "job {job}, bet {}",
                record.antebot_bet_id
            );
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked} events checked");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A full disk is a 503 ("unavailable"), never a 500, and what was acknowledged before stays.
#[tokio::test]
async fn a_full_database_refuses_writes_as_unavailable_and_keeps_what_it_had() {
    let (dir, store) = scratch_store("full", Some(400));
    let mut acknowledged = 0i64;
    let mut failure = None;
    for batch in 0..1000 {
        match store.ingest(heartbeats(batch * 50 + 1, 50)).await {
            Ok(outcomes) => acknowledged += outcomes.iter().filter(|o| o.accepted).count() as i64,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    assert!(matches!(failure, Some(StoreError::Unavailable(_))), "{failure:?}");
    assert!(acknowledged > 0);
    let stored: i64 = store.read(|c| Ok(c.query_row("SELECT count(*) FROM rounds", [], |r| r.get(0))?)).await.unwrap();
    assert_eq!(stored, acknowledged, "every acknowledged round is still there");
    // The writer keeps working for what still fits (a read-only check here: ping).
    store.ping().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn full_sync() -> StoreOptions {
    StoreOptions { sqlite_sync: SqliteSync::Full, ..options() }
}

/// With `SQLITE_SYNC=full`, a job of `DEFER_AT` messages or more commits without waiting for
/// the sync and is answered by the syncer; smaller groups sync in COMMIT. Both end up in the
/// file.
#[tokio::test]
async fn large_groups_are_answered_after_the_syncer_syncs() {
    let (dir, store) = scratch_store_on("deferred", full_sync(), Hub::new());
    let large: Vec<Message> = (1..=DEFER_AT as i64).map(|n| bet(&format!("b{n}"), n, "c")).collect();
    let outcomes = store.ingest(large).await.unwrap();
    assert!(outcomes.iter().all(|o| o.accepted));
    assert_eq!(store.commit_stats().read().deferred, 1);
    let small: Vec<Message> = (1..DEFER_AT as i64).map(|n| bet(&format!("s{n}"), n, "d")).collect();
    store.ingest(small).await.unwrap();
    let counts = store.commit_stats().read();
    assert_eq!((counts.deferred, counts.commits >= 2), (1, true), "{counts:?}");
    assert_eq!(count(&store, "SELECT count(*) FROM bets").await, 2 * DEFER_AT as i64 - 1);
    let path = dir.join("deferred.db");
    drop(store);
    let again = SqliteStore::open(&path, full_sync(), Hub::new()).unwrap();
    assert_eq!(count(&again, "SELECT count(*) FROM bets").await, 2 * DEFER_AT as i64 - 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// By default (`SQLITE_SYNC=background`) every group, however small, commits without waiting
/// for the sync and is answered at once; the syncer then syncs the log. What was answered is
/// in the file, for a plain connection and after reopening.
#[tokio::test]
async fn by_default_groups_are_answered_before_the_syncer_syncs_them() {
    let (dir, store) = scratch_store("background", None);
    for n in 1..=3 {
        let outcome = store.ingest(vec![bet(&format!("b{n}"), n, "c")]).await.unwrap();
        assert!(outcome[0].accepted);
    }
    let counts = store.commit_stats().read();
    assert_eq!(counts.deferred, counts.commits, "{counts:?}");
    assert!(counts.commits >= 3, "{counts:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.commit_stats().read().syncs == 0 {
        assert!(Instant::now() < deadline, "the syncer never synced");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let path = dir.join("background.db");
    let plain = Connection::open(&path).unwrap();
    assert_eq!(plain.query_row("SELECT count(*) FROM bets", [], |r| r.get::<_, i64>(0)).unwrap(), 3);
    drop(plain);
    drop(store);
    let again = SqliteStore::open(&path, full_sync(), Hub::new()).unwrap();
    assert_eq!(count(&again, "SELECT count(*) FROM bets").await, 3);
    let _ = std::fs::remove_dir_all(&dir);
}
