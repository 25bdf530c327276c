//! The HTTP API's JSON bodies: arbitrary bytes through `serde_json` into the request types of
//! `POST /v1/rooms`, `POST /v1/rooms/{id}/seats` and `POST /v1/matchmake`, then their validation.
//! Nothing may panic, and whatever passes validation is within the documented bounds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use server::config::Config;
use server::http::{CreateRoomRequest, MatchmakeRequest, NewRoom, SeatRequest, parse_player};
use server::modes::Modes;
use server::session::SessionSettings;

fn valid_player(id: &str) {
    assert!((1..=64).contains(&id.len()), "{id:?}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{id:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = serde_json::from_slice::<CreateRoomRequest>(data)
        && let Ok(room) = NewRoom::try_from(raw)
    {
        let s = room.settings;
        assert!((1..=64).contains(&s.max_players), "{s:?}");
        assert!((1..=60).contains(&s.tick_rate), "{s:?}");
        assert!((1..=3600).contains(&s.duration_s), "{s:?}");
    }
    if let Ok(raw) = serde_json::from_slice::<SeatRequest>(data)
        && let Ok(player) = parse_player(&raw.player_id)
    {
        valid_player(player.as_str());
        assert_eq!(player.as_str(), raw.player_id);
    }
    if let Ok(raw) = serde_json::from_slice::<MatchmakeRequest>(data) {
        if let Ok(player) = parse_player(&raw.player_id) {
            valid_player(player.as_str());
        }
        if let Some(mode) =
            Modes::standard(SessionSettings::from_config(&Config::default()).into()).get(&raw.mode)
        {
            assert_eq!(mode.name(), raw.mode);
        }
    }
});
