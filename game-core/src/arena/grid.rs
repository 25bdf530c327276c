//! A uniform grid over the pickups, rebuilt each tick, so that a player only tests the pickups in
//! the cells around it instead of all of them (players x pickups grows quadratically).

use super::{ARENA_SIZE, Pickup};

const CELL_SIZE: f32 = 40.0;
const CELLS_PER_SIDE: usize = (ARENA_SIZE / CELL_SIZE) as usize + 1;

#[derive(Debug, Default)]
pub(super) struct PickupGrid {
    /// `cell_start[c]..cell_start[c + 1]` is the range of `items` in cell `c` (a counting sort).
    cell_start: Vec<u32>,
    items: Vec<u32>,
    /// Scratch for the fill pass, kept to avoid an allocation per tick.
    cursor: Vec<u32>,
}

fn cell_of(coordinate: f32) -> usize {
    ((coordinate / CELL_SIZE) as usize).min(CELLS_PER_SIDE - 1)
}

impl PickupGrid {
    pub(super) fn rebuild(&mut self, pickups: &[Pickup]) {
        let cells = CELLS_PER_SIDE * CELLS_PER_SIDE;
        self.cell_start.clear();
        self.cell_start.resize(cells + 1, 0);
        for pickup in pickups {
            self.cell_start[cell_of(pickup.y) * CELLS_PER_SIDE + cell_of(pickup.x) + 1] += 1;
        }
        for cell in 0..cells {
            self.cell_start[cell + 1] += self.cell_start[cell];
        }
        self.items.clear();
        self.items.resize(pickups.len(), 0);
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.cell_start);
        for (index, pickup) in pickups.iter().enumerate() {
            let cell = cell_of(pickup.y) * CELLS_PER_SIDE + cell_of(pickup.x);
            self.items[self.cursor[cell] as usize] = index as u32;
            self.cursor[cell] += 1;
        }
    }

    /// Calls `visit` with the index of every pickup in a cell that a circle of `radius` around
    /// `(x, y)` overlaps, in ascending index order within each cell.
    pub(super) fn for_each_near(&self, x: f32, y: f32, radius: f32, mut visit: impl FnMut(usize)) {
        let (x0, x1) = (cell_of((x - radius).max(0.0)), cell_of(x + radius));
        let (y0, y1) = (cell_of((y - radius).max(0.0)), cell_of(y + radius));
        for row in y0..=y1 {
            for column in x0..=x1 {
                let cell = row * CELLS_PER_SIDE + column;
                let range = self.cell_start[cell] as usize..self.cell_start[cell + 1] as usize;
                for &index in &self.items[range] {
                    visit(index as usize);
                }
            }
        }
    }
}
