//! One simulation in its own QuickJS runtime: the natives the prelude calls, the limits (memory,
//! time, cancel) and the capture of what the script logs, notifies and writes.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pump_engine::{Difficulty, RoundDeriver};
use rquickjs::context::EvalOptions;
use rquickjs::{CatchResultExt, Context, Ctx, Function, Object, Promise, Runtime, Value as JsValue};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{MEMORY_LIMIT, ScriptError, SimConfig, SimControl};

const PRELUDE: &str = include_str!("prelude.js");
/// Log lines kept from the start and from the end of a run.
const LOG_ENDS: usize = 500;
/// Longest log line or notification kept.
const TEXT_MAX: usize = 10_000;
const NOTIFICATIONS_MAX: usize = 1000;
/// Each file written with `logToFile` is capped at this size, and so is their number.
const FILE_MAX: usize = 1024 * 1024;
const FILES_MAX: usize = 64;
/// After an interrupted run, the time `onBettingStopped` and the result still get.
const GRACE: Duration = Duration::from_secs(1);

/// The run's seeded PRNG (splitmix64): `Math.random`, `shuffle` and `resetSeed` draw from it,
/// so the same script, seeds and options give the same result.
struct Prng(u64);

impl Prng {
    fn new(server: &str, client: &str) -> Self {
        let digest = Sha256::digest(format!("{server}:{client}").as_bytes());
        Self(u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8])))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Why the interrupt handler stopped the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    TimeLimit,
    Cancelled,
}

/// What the natives share.
struct Natives {
    deriver: RoundDeriver,
    prng: Prng,
    logs_head: Vec<Value>,
    logs_tail: VecDeque<Value>,
    logs_total: u64,
    notifications: Vec<Value>,
    files: BTreeMap<String, String>,
    reported: u64,
}

fn capped(mut text: String) -> String {
    if text.len() > TEXT_MAX {
        let mut end = TEXT_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn difficulty_of(pops: u32) -> Difficulty {
    match pops {
        1 => Difficulty::Easy,
        3 => Difficulty::Medium,
        5 => Difficulty::Hard,
        _ => Difficulty::Expert,
    }
}

/// The payout tables and win probabilities, by difficulty name, as the prelude reads them.
fn tables_json() -> (String, String) {
    let mut tables = serde_json::Map::new();
    let mut win = serde_json::Map::new();
    for d in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard, Difficulty::Expert] {
        let table = pump_engine::tables::multipliers(d);
        tables.insert(d.as_str().into(), json!(table));
        // P(win with R pumps aimed for) = C(25−R, M) / C(25, M).
        let m = d.pops() as u32;
        let probabilities: Vec<f64> = (0..table.len() as u32).map(|r| binomial(25 - r, m) / binomial(25, m)).collect();
        win.insert(d.as_str().into(), json!(probabilities));
    }
    (Value::Object(tables).to_string(), Value::Object(win).to_string())
}

fn binomial(n: u32, k: u32) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

fn new_runtime() -> Result<(Runtime, Context), String> {
    let runtime = Runtime::new().map_err(|e| format!("cannot start the script engine: {e}"))?;
    runtime.set_memory_limit(MEMORY_LIMIT);
    runtime.set_max_stack_size(512 * 1024);
    let context = Context::full(&runtime).map_err(|e| format!("cannot start the script engine: {e}"))?;
    Ok((runtime, context))
}

fn script_options() -> EvalOptions {
    let mut options = EvalOptions::default();
    // Antebot scripts are sloppy-mode scripts: they assign `betSize = …` and their own globals.
    options.strict = false;
    options.filename = Some("script.js".into());
    options
}

/// The message and line of the exception `ctx` holds.
fn caught(ctx: &Ctx<'_>) -> ScriptError {
    let value = ctx.catch();
    let (message, stack) = match value.as_exception() {
        Some(e) => (e.message().unwrap_or_else(|| "error".into()), e.stack().unwrap_or_default()),
        None => {
            (value.as_string().and_then(|s| s.to_string().ok()).unwrap_or_else(|| format!("{value:?}")), String::new())
        }
    };
    let line = stack
        .split("script.js:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    ScriptError { message, line }
}

/// Parses `script` without running any of it; its first syntax error with the line.
pub fn check_syntax(script: &str) -> Result<(), ScriptError> {
    let (_runtime, context) = new_runtime().map_err(|message| ScriptError { message, line: None })?;
    context.with(|ctx| {
        // Wrapped in a function that is never called: parsed, not run; the wrapper sits on the
        // script's first line, so line numbers are the script's own.
        let wrapped = format!("(function () {{{script}\n}})");
        match ctx.eval_with_options::<JsValue, _>(wrapped, script_options()) {
            Ok(_) => Ok(()),
            Err(_) => Err(caught(&ctx)),
        }
    })
}

/// Runs the whole simulation: the prelude, the script's top level, the betting loop.
pub fn run(config: &SimConfig, server: &str, client: &str, control: &Arc<SimControl>) -> Value {
    let (runtime, context) = match new_runtime() {
        Ok(pair) => pair,
        Err(message) => return failed(server, client, &message),
    };
    let deadline = Rc::new(RefCell::new(Instant::now() + config.time_limit));
    let interrupted: Rc<RefCell<Option<Interrupt>>> = Rc::default();
    // Set once the run has ended: `onBettingStopped` and the result get the grace period, and a
    // cancel no longer interrupts them.
    let finishing = Rc::new(std::cell::Cell::new(false));
    {
        let (deadline, interrupted, control) = (deadline.clone(), interrupted.clone(), control.clone());
        let finishing = finishing.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let why = if control.is_cancelled() && !finishing.get() {
                Interrupt::Cancelled
            } else if Instant::now() >= *deadline.borrow() {
                Interrupt::TimeLimit
            } else {
                return false;
            };
            interrupted.borrow_mut().get_or_insert(why);
            true
        })));
    }
    let natives = Rc::new(RefCell::new(Natives {
        deriver: RoundDeriver::new(server, client),
        prng: Prng::new(server, client),
        logs_head: Vec::new(),
        logs_tail: VecDeque::new(),
        logs_total: 0,
        notifications: Vec::new(),
        files: BTreeMap::new(),
        reported: 0,
    }));
    let result = context.with(|ctx| -> Result<Value, String> {
        let n = install(&ctx, &natives, control).map_err(|e| format!("cannot prepare the sandbox: {e}"))?;
        let finish = |reason: Option<&str>| -> Result<Value, String> {
            // An interrupted or out-of-memory run still reports what it did.
            *deadline.borrow_mut() = Instant::now() + GRACE;
            finishing.set(true);
            raise_memory_limit(&ctx, MEMORY_LIMIT + 32 * 1024 * 1024);
            let result: Function = n.get("result").map_err(|e| e.to_string())?;
            let text: String = result.call((reason,)).catch(&ctx).map_err(|e| e.to_string())?;
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        let options = json!({
            "server_seed": server,
            "client_seed": client,
            "start_nonce": config.start_nonce,
            "balance": config.balance,
        });
        let options = ctx.json_parse(options.to_string()).map_err(|e| e.to_string())?;
        let init: Function = n.get("init").map_err(|e| e.to_string())?;
        init.call::<_, ()>((options,)).catch(&ctx).map_err(|e| e.to_string())?;
        if ctx.eval_with_options::<JsValue, _>(config.script.as_str(), script_options()).is_err() {
            let error = caught(&ctx);
            if let Some(why) = *interrupted.borrow() {
                return finish(Some(reason_of(why)));
            }
            let fail: Function = n.get("scriptError").map_err(|e| e.to_string())?;
            let _ = fail.call::<_, ()>((error.message.clone(),));
            let mut result = finish(Some("script_error"))?;
            result["stop"]["message"] = json!(error.message);
            result["stop"]["line"] = json!(error.line);
            return Ok(result);
        }
        // What the top level started (promises, `.then`s) settles before the first bet.
        while ctx.execute_pending_job() {}
        if let Some(why) = *interrupted.borrow() {
            return finish(Some(reason_of(why)));
        }
        let run: Function = n.get("run").map_err(|e| e.to_string())?;
        // The loop runs synchronously until the script first awaits: an interrupt can end it
        // inside this call already.
        let promise: Promise = match run.call((config.max_bets as f64,)) {
            Ok(promise) => promise,
            Err(_) => {
                let error = caught(&ctx);
                if let Some(why) = *interrupted.borrow() {
                    return finish(Some(reason_of(why)));
                }
                return Err(error.message);
            }
        };
        let settled = promise.finish::<JsValue>();
        if let Some(why) = *interrupted.borrow() {
            return finish(Some(reason_of(why)));
        }
        if let Err(e) = settled {
            let message = match e {
                rquickjs::Error::WouldBlock => {
                    "a promise the script awaits never settles (nothing is left that could settle it)".to_string()
                }
                _ => caught(&ctx).message,
            };
            let fail: Function = n.get("scriptError").map_err(|e| e.to_string())?;
            let _ = fail.call::<_, ()>((message,));
        }
        finish(None)
    });
    drop(context);
    drop(runtime);
    let natives = natives.borrow();
    let bets = result.as_ref().ok().and_then(|r| r["stats"]["bets"].as_u64()).unwrap_or(0);
    control.add_bets(bets.saturating_sub(natives.reported));
    let mut result = match result {
        Ok(result) => result,
        Err(message) => failed(server, client, &message),
    };
    let mut logs: Vec<Value> = natives.logs_head.clone();
    logs.extend(natives.logs_tail.iter().cloned());
    result["logs"] = Value::Array(logs);
    result["logs_total"] = json!(natives.logs_total);
    result["notifications"] = Value::Array(natives.notifications.clone());
    result["files"] = json!(natives.files);
    result
}

/// Lets an interrupted or out-of-memory run assemble its result: called inside `Context::with`,
/// where the runtime's own setter would wait for the lock this thread holds.
fn raise_memory_limit(ctx: &Ctx<'_>, limit: usize) {
    // SAFETY: the context pointer is live for the whole `with` call, and setting the limit of
    // its runtime is what `Runtime::set_memory_limit` does under the lock we already hold.
    unsafe { rquickjs::qjs::JS_SetMemoryLimit(rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr()), limit as _) };
}

fn reason_of(why: Interrupt) -> &'static str {
    match why {
        Interrupt::TimeLimit => "time_limit",
        Interrupt::Cancelled => "cancelled",
    }
}

/// The result of a run that could not even start.
fn failed(server: &str, client: &str, message: &str) -> Value {
    json!({
        "seed": { "server_seed": server, "server_seed_hashed": hex::encode(Sha256::digest(server.as_bytes())), "client_seed": client },
        "stop": { "reason": "script_error", "nonce": null, "message": message },
        "stats": { "bets": 0, "wins": 0, "losses": 0, "wagered": 0.0, "profit": 0.0, "balance": 0.0,
                   "highest_profit": 0.0, "lowest_profit": 0.0, "max_drawdown": 0.0, "highest_bet": 0.0,
                   "highest_loss": 0.0, "best_win_streak": 0, "worst_loss_streak": 0,
                   "highest_multipliers": [], "rtp": 0.0, "vaulted": 0.0 },
        "expected_profit": 0.0, "curve": [], "fetch_calls": 0, "hit_sounds": 0,
    })
}

/// Defines the natives object, runs the prelude, and returns the natives object (which the
/// prelude extended with `run`, `result` and `scriptError`).
fn install<'js>(
    ctx: &Ctx<'js>,
    natives: &Rc<RefCell<Natives>>,
    control: &Arc<SimControl>,
) -> rquickjs::Result<Object<'js>> {
    let n = Object::new(ctx.clone())?;
    let (tables, win) = tables_json();
    n.set("tables", ctx.json_parse(tables)?)?;
    n.set("win", ctx.json_parse(win)?)?;

    let s = natives.clone();
    n.set(
        "pumps",
        Function::new(ctx.clone(), move |nonce: f64, pops: u32| -> u32 {
            let difficulty = difficulty_of(pops);
            u32::from(s.borrow_mut().deriver.result(nonce as u64, difficulty).max_pumps)
        })?,
    )?;
    let s = natives.clone();
    n.set(
        "setSeed",
        Function::new(ctx.clone(), move |server: String, client: String| {
            s.borrow_mut().deriver = RoundDeriver::new(&server, &client);
        })?,
    )?;
    let s = natives.clone();
    n.set("random", Function::new(ctx.clone(), move || -> f64 { s.borrow_mut().prng.next_f64() })?)?;
    let s = natives.clone();
    n.set(
        "freshServerSeed",
        Function::new(ctx.clone(), move || -> String {
            let mut s = s.borrow_mut();
            (0..4).map(|_| format!("{:016x}", s.prng.next_u64())).collect()
        })?,
    )?;
    let s = natives.clone();
    n.set(
        "freshClientSeed",
        Function::new(ctx.clone(), move || -> String {
            const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            let mut s = s.borrow_mut();
            (0..10).map(|_| ALPHABET[(s.prng.next_u64() % ALPHABET.len() as u64) as usize] as char).collect()
        })?,
    )?;
    n.set(
        "busy",
        Function::new(ctx.clone(), |ctx: Ctx<'_>, answer: JsValue<'_>| -> rquickjs::Result<bool> {
            if let Some(promise) = answer.as_promise() {
                match promise.state() {
                    rquickjs::promise::PromiseState::Pending => return Ok(true),
                    rquickjs::promise::PromiseState::Resolved => {}
                    // Rethrown here, as `await` would.
                    rquickjs::promise::PromiseState::Rejected => {
                        let reason = promise.result::<JsValue>().and_then(|r| r.err()).map(|_| ctx.catch());
                        return Err(ctx.throw(reason.unwrap_or_else(|| JsValue::new_undefined(ctx.clone()))));
                    }
                }
            }
            // SAFETY: the runtime of a live context; JS_IsJobPending only reads its job list.
            Ok(unsafe { rquickjs::qjs::JS_IsJobPending(rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr())) })
        })?,
    )?;
    n.set(
        "sha256",
        Function::new(ctx.clone(), |text: String| -> String { hex::encode(Sha256::digest(text.as_bytes())) })?,
    )?;
    let s = natives.clone();
    n.set(
        "log",
        Function::new(ctx.clone(), move |bet: f64, color: Option<String>, text: String| {
            let mut s = s.borrow_mut();
            let line = json!({ "bet": bet as u64, "color": color, "text": capped(text) });
            s.logs_total += 1;
            if s.logs_head.len() < LOG_ENDS {
                s.logs_head.push(line);
            } else {
                if s.logs_tail.len() == LOG_ENDS {
                    s.logs_tail.pop_front();
                }
                s.logs_tail.push_back(line);
            }
        })?,
    )?;
    let s = natives.clone();
    n.set(
        "notify",
        Function::new(ctx.clone(), move |bet: f64, kind: String, message: String| {
            let mut s = s.borrow_mut();
            if s.notifications.len() < NOTIFICATIONS_MAX {
                s.notifications.push(json!({ "bet": bet as u64, "type": capped(kind), "message": capped(message) }));
            }
        })?,
    )?;
    let s = natives.clone();
    n.set(
        "file",
        Function::new(ctx.clone(), move |name: String, text: String| {
            let mut s = s.borrow_mut();
            if !s.files.contains_key(&name) && s.files.len() >= FILES_MAX {
                return;
            }
            let file = s.files.entry(name).or_default();
            let room = FILE_MAX.saturating_sub(file.len());
            let mut end = (text.len() + 1).min(room);
            if end > text.len() {
                file.push_str(&text);
                file.push('\n');
                return;
            }
            while end > 0 && !text.is_char_boundary(end) {
                end -= 1;
            }
            file.push_str(&text[..end]);
        })?,
    )?;
    let (s, control) = (natives.clone(), control.clone());
    n.set(
        "progress",
        Function::new(ctx.clone(), move |bets: f64| {
            let mut s = s.borrow_mut();
            let bets = bets as u64;
            control.add_bets(bets.saturating_sub(s.reported));
            s.reported = bets;
        })?,
    )?;
    ctx.globals().set("__natives", n.clone())?;
    let mut options = EvalOptions::default();
    options.filename = Some("prelude.js".into());
    ctx.eval_with_options::<(), _>(PRELUDE, options)?;
    Ok(n)
}
