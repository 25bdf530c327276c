//! One bot: get a seat over HTTP, connect, wait for the welcome, then play its behaviour until the end of
//! the measured window, and close with 1000.
//!
//! Each bot is one task on the run's single thread: a `select!` over the socket, its input timer and
//! the window's end. Nothing per frame allocates but the outgoing input itself.

use std::cell::RefCell;
use std::collections::HashMap;
use std::f32::consts::TAU;
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::OnceCell;
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};

use crate::cli::{Args, Behaviour};
use crate::latency::InFlight;
use crate::stats::{Stats, micros};
use crate::wire::{self, Kind};
use crate::ws::{Incoming, Ws, WsError};

/// Longest wait for a seat, for the WebSocket handshake, and then for the welcome.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the close handshake at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A slow reader stops reading for this long, then reads for `SLOW_READ_FOR`.
const SLOW_PAUSE: Duration = Duration::from_secs(2);
const SLOW_READ_FOR: Duration = Duration::from_millis(100);
/// Bots stop this long after the end of the measured window.
const STOP_AFTER_WINDOW: Duration = Duration::from_millis(250);
/// How often a bot that sends no input checks whether the window is over.
const IDLE_WAKE: Duration = Duration::from_millis(100);
/// A chaos bot sends one invalid frame this often (5 in 10 s: under the server's limit of 10).
const CHAOS_EVERY: Duration = Duration::from_secs(2);

/// What every bot of the run shares.
pub struct Shared {
    pub args: Args,
    pub http: reqwest::Client,
    pub base: String,
    pub run_id: String,
    /// Seeds the bots' random walks.
    pub seed: u64,
    pub stats: RefCell<Stats>,
    /// Room of each group of `room_size` bots, when the bots create their own rooms.
    pub rooms: RefCell<HashMap<u32, Rc<OnceCell<String>>>>,
    /// Bots stop playing here (the end of the measured window).
    pub window_end: Instant,
}

#[derive(Debug, Deserialize)]
struct Seat {
    ws_url: String,
}

#[derive(Debug, Deserialize)]
struct Room {
    room_id: String,
}

/// How a bot's connection ended.
enum End {
    /// The window ended: the bot closes.
    Deadline,
    /// The server closed with this code (1005: no code).
    Closed(u16),
    Eof,
    Error(String),
}

pub async fn run(shared: Rc<Shared>, index: u32, behaviour: Behaviour, start_at: Instant) {
    sleep_until(start_at).await;
    if Instant::now() >= shared.window_end {
        return;
    }
    shared.stats.borrow_mut().started += 1;
    let player_id = format!("bot-{}-{index}", shared.run_id);

    let t0 = Instant::now();
    let seat = match timeout(CONNECT_TIMEOUT, join(&shared, index, &player_id)).await {
        Ok(Ok(seat)) => seat,
        Ok(Err(e)) => return join_failed(&shared, e),
        Err(_) => return join_failed(&shared, "seat request timed out".into()),
    };
    if let Err(e) = crate::check_loopback(&seat.ws_url, shared.args.allow_remote) {
        return join_failed(&shared, format!("ws_url {}: {e}", seat.ws_url));
    }
    {
        let mut s = shared.stats.borrow_mut();
        s.joined += 1;
        s.join.saturating_record(micros(t0.elapsed()));
    }

    let t1 = Instant::now();
    let (ws, own_id) = match timeout(
        CONNECT_TIMEOUT,
        connect(&shared, &seat.ws_url, player_id, index),
    )
    .await
    {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => return connect_failed(&shared, e),
        Err(_) => return connect_failed(&shared, "no welcome within 10 s".into()),
    };
    {
        let mut s = shared.stats.borrow_mut();
        s.connected += 1;
        s.live += 1;
        s.connect.saturating_record(micros(t1.elapsed()));
    }
    play(&shared, ws, own_id.as_bytes(), index, behaviour).await;
    shared.stats.borrow_mut().live -= 1;
}

fn join_failed(shared: &Shared, e: String) {
    let mut s = shared.stats.borrow_mut();
    s.errors.join += 1;
    s.sample(|| format!("join: {e}"));
}

fn connect_failed(shared: &Shared, e: String) {
    let mut s = shared.stats.borrow_mut();
    s.errors.connect += 1;
    s.sample(|| format!("connect: {e}"));
}

/// A seat: from the matchmaker, or in a room this group of bots created.
async fn join(shared: &Shared, index: u32, player_id: &str) -> Result<Seat, String> {
    let args = &shared.args;
    if !args.creates_rooms() {
        let body = serde_json::json!({ "mode": args.mode, "player_id": player_id });
        return post(shared, "/v1/matchmake", &body).await;
    }
    let group = index / args.room_size;
    let cell = shared
        .rooms
        .borrow_mut()
        .entry(group)
        .or_insert_with(|| Rc::new(OnceCell::new()))
        .clone();
    let room_id = cell
        .get_or_try_init(|| async {
            let body = serde_json::json!({ "mode": args.mode, "max_players": args.room_size });
            post::<Room>(shared, "/v1/rooms", &body)
                .await
                .map(|r| r.room_id)
        })
        .await?;
    let body = serde_json::json!({ "player_id": player_id });
    post(shared, &format!("/v1/rooms/{room_id}/seats"), &body).await
}

async fn post<T: for<'de> Deserialize<'de>>(
    shared: &Shared,
    path: &str,
    body: &serde_json::Value,
) -> Result<T, String> {
    let response = shared
        .http
        .post(format!("{}{path}", shared.base))
        .bearer_auth(&shared.args.api_key)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        return Err(format!("POST {path}: {status} {text}"));
    }
    response
        .json()
        .await
        .map_err(|e| format!("POST {path}: {status} with an unexpected body: {e}"))
}

/// Opens the WebSocket and waits for the welcome. Returns the player id the welcome names (the bot's
/// own, unless the server says otherwise).
async fn connect(
    shared: &Shared,
    url: &str,
    player_id: String,
    index: u32,
) -> Result<(Ws, String), String> {
    let mut ws = Ws::connect(url, shared.seed ^ u64::from(index).rotate_left(32))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match ws.next_frame().await {
            Ok(Incoming::Binary(frame)) => {
                count_frame(&mut shared.stats.borrow_mut(), frame);
                match wire::scan(frame, player_id.as_bytes()) {
                    Ok(s) if s.kind == Kind::Welcome => {
                        let own = match s.player_id {
                            Some(id) if id != player_id.as_bytes() => {
                                String::from_utf8_lossy(id).into_owned()
                            }
                            _ => player_id,
                        };
                        return Ok((ws, own));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(format!("undecodable first frame: {e}")),
                }
            }
            Ok(Incoming::Close(code)) => return Err(format!("closed before the welcome: {code}")),
            Ok(Incoming::Text) => return Err("a text frame before the welcome".into()),
            Err(WsError::Eof) => return Err("connection ended before the welcome".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn count_frame(s: &mut Stats, frame: &[u8]) {
    s.counters.frames_in += 1;
    s.counters.bytes_in += frame.len() as u64;
}

async fn play(shared: &Shared, mut ws: Ws, own_id: &[u8], index: u32, behaviour: Behaviour) {
    let args = &shared.args;
    let mut rng = Rng::new(shared.seed ^ u64::from(index));
    let now = Instant::now();

    let sends = behaviour != Behaviour::Idle && args.input_rate > 0.0;
    let period = if sends {
        Duration::from_secs_f64(1.0 / args.input_rate)
    } else {
        // A bot that sends nothing still wakes now and then to see whether the window is over.
        IDLE_WAKE
    };
    // A random phase, so that the bots' inputs do not all fall at the same instant.
    let mut inputs = tokio::time::interval_at(now + period.mul_f32(rng.unit()), period);
    inputs.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let measures_latency = matches!(behaviour, Behaviour::Normal | Behaviour::Chaos);
    let mut in_flight = InFlight::new();
    let mut seq: u32 = 0;
    let mut angle = rng.unit() * TAU;
    let mut next_chaos = now + CHAOS_EVERY.mul_f32(rng.unit());
    let mut chaos_sent: u64 = 0;
    let mut input = Vec::with_capacity(48);

    // The window's end is checked when the input timer fires (within one input period), rather than
    // by a timer of its own that every wakeup would poll. Bots stop a little after it, so that the
    // figures read at the end of the window still count every bot that played it.
    let stop_at = shared.window_end + STOP_AFTER_WINDOW;
    let slow = behaviour == Behaviour::SlowReader;
    let mut reading = true;
    let toggle = sleep_until(now + SLOW_READ_FOR.mul_f32(1.0 + rng.unit()));
    tokio::pin!(toggle);

    let end = loop {
        tokio::select! {
            biased;
            msg = ws.next_frame(), if reading => match msg {
                Ok(Incoming::Binary(frame)) => {
                    let at = Instant::now();
                    let mut s = shared.stats.borrow_mut();
                    count_frame(&mut s, frame);
                    match wire::scan(frame, own_id) {
                        Ok(f) => match f.kind {
                            Kind::State => {
                                s.counters.states += 1;
                                if let (true, Some(last)) = (measures_latency, f.own_last_seq) {
                                    let Stats { measuring, ack, counters, .. } = &mut *s;
                                    let measuring = *measuring;
                                    counters.acks += in_flight.acked(last, at.into_std(), |d| {
                                        if measuring {
                                            ack.saturating_record(micros(d));
                                        }
                                    }) as u64;
                                }
                            }
                            Kind::Error => {
                                s.counters.error_msgs += 1;
                                if behaviour != Behaviour::Chaos {
                                    s.errors.error_replies += 1;
                                    s.sample(|| format!("error reply: {}", hex_prefix(frame)));
                                }
                            }
                            _ => {}
                        },
                        Err(e) => {
                            s.errors.decode += 1;
                            s.sample(|| format!("undecodable frame ({e}): {}", hex_prefix(frame)));
                        }
                    }
                }
                Ok(Incoming::Text) => {
                    let mut s = shared.stats.borrow_mut();
                    s.errors.decode += 1;
                    s.sample(|| "text frame from the server".into());
                }
                Ok(Incoming::Close(code)) => break End::Closed(code),
                Err(WsError::Eof) => break End::Eof,
                Err(e) => break End::Error(e.to_string()),
            },
            due = inputs.tick() => {
                if Instant::now() >= stop_at {
                    break End::Deadline;
                }
                if !sends {
                    continue;
                }
                {
                    // How late the timer fired: the bots' own scheduling delay (a saturated
                    // generator shows here first).
                    let mut s = shared.stats.borrow_mut();
                    if s.measuring {
                        s.input_lag.saturating_record(micros(Instant::now().saturating_duration_since(due)));
                    }
                }
                if behaviour == Behaviour::Chaos && Instant::now() >= next_chaos {
                    next_chaos += CHAOS_EVERY;
                    seq = seq.wrapping_add(1);
                    let frame = wire::chaos_frame(chaos_sent, seq);
                    chaos_sent += 1;
                    shared.stats.borrow_mut().counters.chaos_sent += 1;
                    if let Err(e) = ws.send_binary(&frame).await {
                        break End::Error(e.to_string());
                    }
                }
                seq = seq.wrapping_add(1);
                angle += (rng.unit() - 0.5) * 0.8;
                input.clear();
                wire::encode_input(&mut input, seq, angle.cos(), angle.sin());
                if measures_latency {
                    in_flight.sent(seq, std::time::Instant::now());
                }
                if let Err(e) = ws.send_binary(&input).await {
                    break End::Error(e.to_string());
                }
                shared.stats.borrow_mut().counters.inputs_sent += 1;
            }
            () = &mut toggle, if slow => {
                reading = !reading;
                let next = if reading { SLOW_READ_FOR } else { SLOW_PAUSE };
                toggle.as_mut().reset(Instant::now() + next);
            }
        }
    };

    let unacked = in_flight.finish();
    {
        let mut s = shared.stats.borrow_mut();
        s.unacked += unacked;
        match &end {
            End::Deadline => {}
            End::Closed(code) => {
                if *code == 4001 {
                    s.match_over += 1;
                }
                s.disconnected(code.to_string());
            }
            End::Eof => s.disconnected("eof".into()),
            End::Error(e) => {
                s.disconnected("io-error".into());
                s.sample(|| format!("connection: {e}"));
            }
        }
    }
    // Finish the close handshake (bounded), so that the server frees the slot at once.
    let _ = timeout(CLOSE_TIMEOUT, async {
        match end {
            End::Deadline => {
                let _ = ws.close(1000).await;
            }
            // Our answer to the server's close is queued: write it and wait for the end.
            End::Closed(_) => {
                if ws.flush().await.is_ok() {
                    while ws.next_frame().await.is_ok() {}
                }
            }
            End::Eof | End::Error(_) => {}
        }
    })
    .await;
}

fn hex_prefix(frame: &[u8]) -> String {
    frame
        .iter()
        .take(48)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// xorshift64*: the bots need cheap, varied directions, not cryptography.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that neighbouring seeds diverge and the state is never 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_uniform_enough() {
        let mut r = Rng::new(7);
        let xs: Vec<f32> = (0..10_000).map(|_| r.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert_ne!(Rng::new(1).unit(), Rng::new(2).unit());
    }
}
