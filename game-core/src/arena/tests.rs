use proptest::prelude::*;

use super::*;

fn id(s: &str) -> PlayerId {
    PlayerId::parse(s).unwrap()
}

fn arena(max_players: u32, duration_s: u32) -> Arena {
    Arena::new(
        ArenaConfig {
            max_players,
            tick_rate: 20,
            duration_s,
        },
        42,
    )
}

#[test]
fn join_rejects_duplicates_and_a_full_game() {
    let mut game = arena(2, 10);
    game.join(id("a")).unwrap();
    assert_eq!(game.join(id("a")), Err(JoinError::AlreadyJoined(id("a"))));
    game.join(id("b")).unwrap();
    assert_eq!(game.join(id("c")), Err(JoinError::Full { capacity: 2 }));
    assert!(game.leave(&id("a")));
    assert!(!game.leave(&id("a")));
    game.join(id("c")).unwrap();
}

#[test]
fn joins_and_leaves_come_out_of_the_next_step() {
    let mut game = arena(4, 10);
    game.join(id("a")).unwrap();
    game.join(id("b")).unwrap();
    game.leave(&id("a"));
    let mut events = Vec::new();
    game.step(&mut events);
    assert_eq!(
        events,
        vec![
            GameEvent::PlayerJoined(id("a")),
            GameEvent::PlayerJoined(id("b")),
            GameEvent::PlayerLeft(id("a"))
        ]
    );
    events.clear();
    game.step(&mut events);
    assert!(events.is_empty());
}

#[test]
fn a_player_moves_200_units_per_second_and_stops_at_the_wall() {
    let mut game = arena(1, 100);
    game.join(id("a")).unwrap();
    let start = game.arena_players()[0].clone();
    assert!(game.apply_input(&id("a"), Seq(1), Direction::new(1.0, 0.0).unwrap()));
    let mut events = Vec::new();
    for _ in 0..20 {
        game.step(&mut events);
    }
    let moved = &game.arena_players()[0];
    assert!(
        (moved.x - (start.x + 200.0).min(ARENA_SIZE)).abs() < 1e-3,
        "{} -> {}",
        start.x,
        moved.x
    );
    assert_eq!(moved.y, start.y);
    for _ in 0..200 {
        game.step(&mut events);
    }
    assert_eq!(game.arena_players()[0].x, ARENA_SIZE);
}

#[test]
fn stale_inputs_are_ignored_and_last_seq_reports_the_newest_applied() {
    let mut game = arena(1, 10);
    game.join(id("a")).unwrap();
    let right = Direction::new(1.0, 0.0).unwrap();
    let left = Direction::new(-1.0, 0.0).unwrap();
    assert!(game.apply_input(&id("a"), Seq(5), right));
    assert!(!game.apply_input(&id("a"), Seq(5), left));
    assert!(!game.apply_input(&id("a"), Seq(3), left));
    assert!(!game.apply_input(&id("nobody"), Seq(9), left));
    assert_eq!(game.arena_players()[0].last_seq, Seq(5));
    assert_eq!(game.arena_players()[0].direction, right);
}

#[test]
fn touching_a_pickup_scores_and_a_new_one_appears() {
    let mut game = arena(1, 100);
    game.join(id("a")).unwrap();
    let target = game.pickups()[0];
    game.players[0].x = target.x;
    game.players[0].y = target.y;
    let before = game.pickups().len();
    game.step(&mut Vec::new());
    assert_eq!(game.arena_players()[0].score, 1);
    assert_eq!(game.pickups().len(), before);
    assert!(game.pickups().iter().all(|p| p.id != target.id));
}

#[test]
fn the_match_ends_after_its_duration_with_ranked_results() {
    let mut game = arena(3, 1);
    for name in ["a", "b", "c"] {
        game.join(id(name)).unwrap();
    }
    game.players[1].score = 7;
    let mut events = Vec::new();
    for _ in 0..19 {
        game.step(&mut events);
    }
    assert!(!game.is_over());
    assert_eq!(game.remaining_ms(), 50);
    events.clear();
    game.step(&mut events);
    assert!(game.is_over());
    assert_eq!(game.remaining_ms(), 0);
    let Some(GameEvent::MatchOver(results)) = events.last() else {
        panic!("expected match_over, got {events:?}");
    };
    assert_eq!(results[0].player_id, id("b"));
    assert_eq!(results[0].rank, 1);
    assert_eq!(game.join(id("d")), Err(JoinError::MatchOver));
    let tick = game.tick();
    game.step(&mut events);
    assert_eq!(game.tick(), tick, "an ended match does not advance");
}

#[test]
fn the_view_serialises_to_the_wire_state_shape() {
    let mut game = arena(2, 10);
    game.join(id("a")).unwrap();
    assert!(game.apply_input(&id("a"), Seq(3), Direction::ZERO));
    game.step(&mut Vec::new());
    let bytes = rmp_serde::to_vec_named(&game.view()).unwrap();
    #[derive(serde::Deserialize)]
    struct Wire {
        players: Vec<(String, f32, f32, u32, u32)>,
        pickups: Vec<(u32, f32, f32)>,
        remaining_ms: u64,
    }
    let wire: Wire = rmp_serde::from_slice(&bytes).unwrap();
    let p = &game.arena_players()[0];
    assert_eq!(wire.players, vec![("a".to_string(), p.x, p.y, 0, 3)]);
    assert_eq!(wire.pickups.len(), game.pickups().len());
    assert_eq!(wire.remaining_ms, 10_000 - 50);
}

#[test]
fn restore_rejects_impossible_snapshots() {
    let mut game = arena(1, 10);
    game.join(id("a")).unwrap();
    let mut snapshot = game.snapshot();
    snapshot.players[0].x = f32::NAN;
    assert!(Arena::restore(snapshot).is_err());
    let mut snapshot = game.snapshot();
    snapshot.config.max_players = 0;
    assert!(Arena::restore(snapshot).is_err());
    let mut snapshot = game.snapshot();
    snapshot.config.max_players = 2;
    snapshot.players.push(snapshot.players[0].clone());
    assert!(Arena::restore(snapshot).is_err());
}

/// One thing a client or the room can do to a game between steps.
#[derive(Debug, Clone)]
enum Action {
    Join(u8),
    Leave(u8),
    Input(u8, u32, f32, f32),
    Step,
}

fn action() -> impl Strategy<Value = Action> {
    let any_float = prop_oneof![
        any::<f32>(),
        -2.0f32..2.0,
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::MAX),
    ];
    prop_oneof![
        (0u8..12).prop_map(Action::Join),
        (0u8..12).prop_map(Action::Leave),
        (0u8..12, any::<u32>(), any_float.clone(), any_float)
            .prop_map(|(p, s, x, y)| Action::Input(p, s, x, y)),
        Just(Action::Step),
        Just(Action::Step),
    ]
}

fn player(n: u8) -> PlayerId {
    id(&format!("p{n}"))
}

fn run(game: &mut Arena, actions: &[Action]) {
    let mut events = Vec::new();
    for action in actions {
        match *action {
            Action::Join(n) => {
                let _ = game.join(player(n));
            }
            Action::Leave(n) => {
                game.leave(&player(n));
            }
            Action::Input(n, seq, dx, dy) => {
                if let Ok(direction) = Direction::try_from(RawDirection { dx, dy }) {
                    game.apply_input(&player(n), Seq(seq), direction);
                }
            }
            Action::Step => game.step(&mut events),
        }
    }
}

proptest! {
    #[test]
    fn any_sequence_keeps_players_inside_scores_monotone_and_capacity(
        max_players in 1u32..8,
        seed in any::<u64>(),
        actions in prop::collection::vec(action(), 0..200),
    ) {
        let mut game = Arena::new(ArenaConfig { max_players, tick_rate: 20, duration_s: 5 }, seed);
        let mut scores: HashMap<PlayerId, u32> = HashMap::new();
        for action in &actions {
            run(&mut game, std::slice::from_ref(action));
            prop_assert!(game.arena_players().len() <= max_players as usize);
            for p in game.arena_players() {
                prop_assert!((0.0..=ARENA_SIZE).contains(&p.x) && (0.0..=ARENA_SIZE).contains(&p.y));
                let previous = scores.insert(p.id.clone(), p.score).unwrap_or(0);
                prop_assert!(p.score >= previous);
            }
            // A player who leaves and rejoins starts again from zero.
            if let Action::Leave(n) = action {
                scores.remove(&player(*n));
            }
        }
    }

    #[test]
    fn same_seed_and_inputs_give_identical_snapshots(
        seed in any::<u64>(),
        actions in prop::collection::vec(action(), 0..150),
    ) {
        let config = ArenaConfig { max_players: 6, tick_rate: 20, duration_s: 3 };
        let mut a = Arena::new(config, seed);
        let mut b = Arena::new(config, seed);
        run(&mut a, &actions);
        run(&mut b, &actions);
        prop_assert_eq!(rmp_serde::to_vec(&a.snapshot()).unwrap(), rmp_serde::to_vec(&b.snapshot()).unwrap());
    }

    #[test]
    fn restoring_a_snapshot_and_continuing_equals_never_stopping(
        seed in any::<u64>(),
        before in prop::collection::vec(action(), 0..100),
        after in prop::collection::vec(action(), 0..100),
    ) {
        let config = ArenaConfig { max_players: 6, tick_rate: 20, duration_s: 3 };
        let mut straight = Arena::new(config, seed);
        run(&mut straight, &before);
        // Through bytes, as the server persists it.
        let bytes = rmp_serde::to_vec(&straight.snapshot()).unwrap();
        let mut restored = Arena::restore(rmp_serde::from_slice(&bytes).unwrap()).unwrap();
        run(&mut straight, &after);
        run(&mut restored, &after);
        prop_assert_eq!(rmp_serde::to_vec(&straight.snapshot()).unwrap(), rmp_serde::to_vec(&restored.snapshot()).unwrap());
    }
}
