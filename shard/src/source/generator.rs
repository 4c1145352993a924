//! The deterministic generator: a replayable stream of keyed events.
//!
//! Event `i` of partition `p` (of `P`) is a pure function of (seed, p, i): its key is one
//! of `keys` keys (uniform), its time is `start + (i·P + p)·step − d` where `d` is a
//! pseudo-random disorder in `[0, disorder_ms]`, and its value an integer in `[0, 1000)`.
//! `step` is `step_ms`; without it, a paced generator that starts at the wall clock
//! (`rate > 0`, no `start_ms`) steps `1000 / rate` ms, so that its event time follows
//! the wall clock as the events are paced out, and any other steps 1 ms (a synthetic
//! timeline, the same whatever the rate).
//! Seeking to offset `i` therefore replays exactly the same events, which is what makes
//! the generator a replayable source for exactly-once.
//!
//! Keys are built once (their text and stable hash), so producing an event costs one
//! random number and a key copy; the generator stays well below the cost of the window
//! operator it feeds. With `rate > 0` it paces itself on the wall clock.

use std::time::Instant;

use weir_config::GeneratorSource as Spec;
use weir_engine::{Event, EventTime, Key, Offset, PartitionId};

use super::partitions::{self, PartitionSlot};
use super::{LocalFuture, Source, SourceError, SourceOutput};

/// Keys pre-built up to this many; beyond, keys are made per event.
const MAX_PREBUILT_KEYS: u64 = 4_000_000;

/// The generator partitions one shard owns.
#[derive(Debug)]
pub struct GeneratorSource {
    spec: Spec,
    start_ms: i64,
    keys: Vec<Key>,
    partitions: Vec<Partition>,
    next: usize,
}

#[derive(Debug)]
struct Partition {
    id: PartitionId,
    next: u64,
    /// Events this partition produces (`u64::MAX` = endless).
    end: u64,
    /// Offset at which pacing restarted (at a seek or a resume), and when.
    paced_from: u64,
    paced_at: Instant,
    /// Held back by watermark alignment.
    paused: bool,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Formats the text of key `k`.
pub fn key_text(k: u64) -> String {
    format!("key-{k}")
}

impl PartitionSlot for Partition {
    fn id(&self) -> PartitionId {
        self.id
    }

    fn position(&self) -> Offset {
        Offset(self.next)
    }

    fn paused_mut(&mut self) -> &mut bool {
        &mut self.paused
    }
}

impl GeneratorSource {
    /// The generator for the partitions `owned` of a spec; `start_ms` is the event time of
    /// the first event (from the spec, or fixed by the runtime at first start).
    pub fn new(spec: &Spec, owned: &[PartitionId], start_ms: i64) -> Self {
        let keys = if spec.keys <= MAX_PREBUILT_KEYS {
            (0..spec.keys).map(|k| Key::new(&key_text(k))).collect()
        } else {
            Vec::new()
        };
        let nr = u64::from(spec.partitions.max(1));
        let partitions = owned
            .iter()
            .map(|&id| {
                let p = u64::from(id.0);
                // Spread `total` over partitions: the first `total % nr` get one more.
                let end = if spec.total == 0 {
                    u64::MAX
                } else {
                    spec.total / nr + u64::from(p < spec.total % nr)
                };
                Partition {
                    id,
                    next: 0,
                    end,
                    paced_from: 0,
                    paced_at: Instant::now(),
                    paused: false,
                }
            })
            .collect();
        Self {
            spec: spec.clone(),
            start_ms,
            keys,
            partitions,
            next: 0,
        }
    }

    /// Event `i` of partition `p`.
    #[inline]
    pub fn event_at(&self, p: PartitionId, i: u64, out: &SourceOutput) -> Event {
        let nr = u64::from(self.spec.partitions.max(1));
        let r = mix(self.spec.seed ^ mix(u64::from(p.0) << 40 ^ i));
        let k = r % self.spec.keys.max(1);
        let key = match self.keys.get(k as usize) {
            Some(key) => key.clone(),
            None => Key::new(&key_text(k)),
        };
        let disorder = if self.spec.disorder_ms == 0 {
            0
        } else {
            ((r >> 20) % (self.spec.disorder_ms + 1)) as i64
        };
        let n = i.saturating_mul(nr).saturating_add(u64::from(p.0));
        let tick = match self.spec.step_ms {
            Some(step) => i64::try_from(n.saturating_mul(step)).unwrap_or(i64::MAX),
            None if self.spec.rate > 0.0 && self.spec.start_ms.is_none() => {
                (n as f64 * 1000.0 / self.spec.rate) as i64
            }
            None => i64::try_from(n).unwrap_or(i64::MAX),
        };
        let ts = self.start_ms.saturating_add(tick).saturating_sub(disorder);
        let value = ((r >> 40) % 1000) as f64;
        Event::new(key, EventTime(ts), value, out.id(p, Offset(i)))
    }

    /// How many events partition `part` may have produced by now, at the configured rate.
    fn allowed(&self, part: &Partition) -> u64 {
        if self.spec.rate <= 0.0 {
            return u64::MAX;
        }
        let per_partition = self.spec.rate / f64::from(self.spec.partitions.max(1));
        let elapsed = part.paced_at.elapsed().as_secs_f64();
        part.paced_from + (elapsed * per_partition) as u64 + 1
    }
}

impl Source for GeneratorSource {
    fn runs_tasks(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!(
            "generator seed={} keys={} rate={} total={}",
            self.spec.seed, self.spec.keys, self.spec.rate, self.spec.total
        )
    }

    fn partitions(&self) -> Vec<PartitionId> {
        self.partitions.iter().map(|p| p.id).collect()
    }

    fn poll<'a>(
        &'a mut self,
        max: usize,
        out: &'a mut SourceOutput,
    ) -> LocalFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            if self.partitions.is_empty() {
                return Ok(());
            }
            // One partition per poll, in turn, so all partitions advance together.
            let n = self.partitions.len();
            let Some(idx) = (0..n)
                .map(|k| (self.next + k) % n)
                .find(|&i| !self.partitions[i].paused)
            else {
                return Ok(());
            };
            self.next = idx.wrapping_add(1);
            let part = &self.partitions[idx];
            let (id, from) = (part.id, part.next);
            if from >= part.end {
                out.finished(id);
                return Ok(());
            }
            let room = max.min(out.room(id)) as u64;
            let until = part
                .end
                .min(self.allowed(part))
                .min(from.saturating_add(room));
            if until <= from {
                out.empty(id);
                return Ok(());
            }
            out.events.reserve((until - from) as usize);
            for i in from..until {
                let e = self.event_at(id, i, out);
                out.event(e);
            }
            self.partitions[idx].next = until;
            if until >= self.partitions[idx].end {
                out.finished(id);
            }
            Ok(())
        })
    }

    fn set_paused(&mut self, partition: PartitionId, paused: bool) {
        // Resumed after alignment held it: on at its rate, not in a burst that would put
        // it ahead again.
        for part in self.partitions.iter_mut() {
            if part.id == partition && part.paused && !paused {
                part.paced_from = part.next;
                part.paced_at = Instant::now();
            }
        }
        partitions::set_paused(&mut self.partitions, partition, paused);
    }

    fn resumed(&mut self) {
        for part in self.partitions.iter_mut() {
            part.paced_from = part.next;
            part.paced_at = Instant::now();
        }
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        partitions::positions(&self.partitions)
    }

    fn seek(&mut self, partition: PartitionId, next: Offset) -> Result<(), SourceError> {
        let part = partitions::find_mut(&mut self.partitions, partition, "generator")?;
        part.next = next.0;
        part.paced_from = next.0;
        part.paced_at = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weir_config::{EventFields, TimeField};
    use weir_engine::{EventDecoder, SourceId};

    use super::*;

    fn spec(rate: f64, start_ms: Option<i64>) -> Spec {
        Spec {
            keys: 10,
            rate,
            total: 0,
            disorder_ms: 0,
            partitions: 2,
            seed: 1,
            start_ms,
            step_ms: None,
        }
    }

    fn out() -> SourceOutput {
        let fields = EventFields {
            key: "k".into(),
            time: TimeField::Field("ts".into()),
            value: "v".into(),
        };
        SourceOutput::new(EventDecoder::new(&fields, false), SourceId(0))
    }

    #[test]
    fn a_paced_generator_from_the_wall_clock_follows_it_and_a_synthetic_one_steps_1_ms() {
        let parts = [PartitionId(0), PartitionId(1)];
        let start = 1_700_000_000_000;
        // 1,000 events/s over 2 partitions: event 500 of a partition is the 1,000th of
        // all, one second in (once it ran 5 s ahead of the wall clock per second).
        let clock = GeneratorSource::new(&spec(1000.0, None), &parts, start);
        assert_eq!(
            clock.event_at(PartitionId(0), 500, &out()).time.0,
            start + 1000
        );
        assert_eq!(
            clock.event_at(PartitionId(1), 500, &out()).time.0,
            start + 1001
        );
        // With start_ms given, the timeline is the same whatever the rate.
        for rate in [0.0, 10.0, 1e6] {
            let synthetic = GeneratorSource::new(&spec(rate, Some(start)), &parts, start);
            assert_eq!(
                synthetic.event_at(PartitionId(0), 500, &out()).time.0,
                start + 1000
            );
        }
        let mut stepped = spec(1000.0, None);
        stepped.step_ms = Some(3);
        let stepped = GeneratorSource::new(&stepped, &parts, start);
        assert_eq!(
            stepped.event_at(PartitionId(1), 2, &out()).time.0,
            start + 15
        );
    }

    #[test]
    fn a_paced_generator_keeps_its_rate_after_a_pause() {
        let parts = [PartitionId(0)];
        let mut g = GeneratorSource::new(&spec(100.0, None), &parts, 0);
        // Ten seconds paused (through the API, or by alignment) at offset 50.
        g.partitions[0].next = 50;
        g.partitions[0].paced_at = Instant::now() - Duration::from_secs(10);
        let burst = g.allowed(&g.partitions[0]);
        assert!(
            burst >= 50 + 9 * 50,
            "without a resume it would catch up: {burst}"
        );
        g.resumed();
        let after = g.allowed(&g.partitions[0]);
        assert!(after <= 52, "on at its rate from where it stopped: {after}");
        // The same after alignment held the partition.
        g.partitions[0].paced_at = Instant::now() - Duration::from_secs(10);
        g.set_paused(PartitionId(0), true);
        g.set_paused(PartitionId(0), false);
        assert!(g.allowed(&g.partitions[0]) <= 52);
    }
}
