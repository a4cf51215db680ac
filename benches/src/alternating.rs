//! Latencies of several pipelines measured in alternating blocks, so that each meets the same machine conditions.
//!
//! Timing one pipeline after another in a single process lets the machine drift between them: the same code measured
//! minutes apart varied by half its cost on the shared benchmark machine. Here every pipeline of a comparison is built
//! first, and then each in turn runs a block of chunks, the order rotating from one round of blocks to the next.
//! Inside its block a pipeline runs alone, settled by its own settle after each chunk as when it is measured on its
//! own; the first chunk of each block, which follows another pipeline's settle, is run but not counted.

use std::time::Instant;

use hdrhistogram::Histogram;

use crate::util::latency_histogram;

/// Runs `n` calls of one pipeline, each timed on its own into the histogram it is given ([`time_call`]).
pub type TimedChunk<'a> = Box<dyn FnMut(usize, &mut Histogram<u64>) + 'a>;

/// One pipeline of an alternating measurement.
pub struct Contender<'a> {
    /// Runs a chunk of calls.
    pub chunk: TimedChunk<'a>,
    /// Settles the pipeline after a chunk, untimed.
    pub settle: Box<dyn FnMut() + 'a>,
}

/// The shape of an alternating measurement.
#[derive(Debug, Clone, Copy)]
pub struct Blocks {
    /// Calls per chunk.
    pub chunk: usize,
    /// Chunks per block, the first of which is not counted (at least 2).
    pub chunks_per_block: usize,
    /// Counted calls per pipeline, at least: rounded up to whole blocks.
    pub calls: u64,
}

impl Blocks {
    /// Counted calls per block.
    fn counted_per_block(self) -> u64 {
        (self.chunk * (self.chunks_per_block - 1)) as u64
    }

    /// Rounds of blocks, each pipeline running one block per round.
    fn rounds(self) -> usize {
        usize::try_from(self.calls.div_ceil(self.counted_per_block())).unwrap_or(usize::MAX)
    }
}

/// Measures `contenders` in alternating blocks: in round `r` the pipelines run one block each, starting with
/// pipeline `r` modulo their number. Returns one histogram per pipeline, in the order given.
///
/// # Panics
/// If a block has fewer than 2 chunks or a chunk no call: nothing would be counted.
pub fn record_alternately(contenders: &mut [Contender<'_>], blocks: Blocks) -> Vec<Histogram<u64>> {
    assert!(
        blocks.chunks_per_block >= 2 && blocks.chunk > 0,
        "a block needs an uncounted chunk and a counted one"
    );
    let mut histograms: Vec<_> = contenders.iter().map(|_| latency_histogram()).collect();
    let mut uncounted = latency_histogram();
    let count = contenders.len();
    for round in 0..blocks.rounds() {
        for offset in 0..count {
            let index = (round % count + offset) % count;
            let contender = &mut contenders[index];
            for chunk in 0..blocks.chunks_per_block {
                let histogram = if chunk == 0 {
                    &mut uncounted
                } else {
                    &mut histograms[index]
                };
                (contender.chunk)(blocks.chunk, histogram);
                (contender.settle)();
            }
        }
    }
    histograms
}

/// Times `call` on its own and records its nanoseconds into `histogram`.
pub fn time_call(histogram: &mut Histogram<u64>, call: impl FnOnce()) {
    let start = Instant::now();
    call();
    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    histogram.saturating_record(nanos.max(1));
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn blocks_rotate_their_first_pipeline_and_leave_their_first_chunk_uncounted() {
        let log = RefCell::new(Vec::new());
        let contender = |name: char| Contender {
            chunk: Box::new({
                let log = &log;
                move |n, histogram: &mut Histogram<u64>| {
                    log.borrow_mut().push(name);
                    for _ in 0..n {
                        time_call(histogram, || {});
                    }
                }
            }),
            settle: Box::new({
                let log = &log;
                move || log.borrow_mut().push('.')
            }),
        };
        let mut contenders = [contender('a'), contender('b')];
        let blocks = Blocks {
            chunk: 3,
            chunks_per_block: 2,
            calls: 7,
        };
        let histograms = record_alternately(&mut contenders, blocks);
        drop(contenders);
        // 7 counted calls need 3 blocks of 3; each block runs 2 chunks, each settled.
        assert_eq!(
            log.into_inner().into_iter().collect::<String>(),
            "a.a.b.b.b.b.a.a.a.a.b.b."
        );
        let counted: Vec<u64> = histograms.iter().map(Histogram::len).collect();
        assert_eq!(counted, [9, 9]);
    }
}
