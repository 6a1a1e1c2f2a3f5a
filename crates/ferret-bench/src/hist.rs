//! A log-bucket latency histogram in microseconds: exact below 256 µs, then
//! 128 sub-buckets per power of two (under 0.8 % relative error). Recording
//! is an index computation and an increment; no allocation after `new`.

const SUB_BITS: u32 = 7; // 128 sub-buckets per octave
const SUB: u64 = 1 << SUB_BITS;
const EXACT: u64 = 2 * SUB; // values below this are their own bucket
const OCTAVES: usize = 40;
const BUCKETS: usize = EXACT as usize + OCTAVES * SUB as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let shift = msb - SUB_BITS;
    let octave = (msb - SUB_BITS - 1) as usize;
    let sub = ((v >> shift) - SUB) as usize;
    (EXACT as usize + octave * SUB as usize + sub).min(BUCKETS - 1)
}

/// The middle of a bucket's range of values.
fn value(i: usize) -> u64 {
    if (i as u64) < EXACT {
        return i as u64;
    }
    let j = i - EXACT as usize;
    let octave = (j / SUB as usize) as u32;
    let sub = (j % SUB as usize) as u64;
    let shift = octave + 1;
    let lo = (SUB + sub) << shift;
    lo + ((1u64 << shift) >> 1)
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.sum += micros as u128;
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += *b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), clamped to the observed min and max.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as (low, high, count), merged into at most about
    /// `rows` rows of roughly equal log width, for printing.
    pub fn rows(&self, rows: usize) -> Vec<(u64, u64, u64)> {
        if self.total == 0 {
            return Vec::new();
        }
        let (lo, hi) = (self.min.max(1) as f64, self.max.max(2) as f64);
        let step = (hi / lo).powf(1.0 / rows.max(1) as f64).max(1.0001);
        let mut out: Vec<(u64, u64, u64)> = Vec::new();
        let mut edge = lo * step;
        let mut start = self.min;
        let mut acc = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let v = value(i).clamp(self.min, self.max);
            if (v as f64) > edge && acc > 0 {
                out.push((start, edge as u64, acc));
                acc = 0;
                start = edge as u64;
                while (v as f64) > edge {
                    edge *= step;
                }
            }
            acc += c;
        }
        if acc > 0 {
            out.push((start, self.max, acc));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in (0..5_000_000u64).step_by(7) {
            let i = index(v);
            assert!(i >= last);
            last = i;
            let m = value(i);
            let err = (m as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 0.008, "v={v} m={m}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for v in 1..=10_000 {
            h.record(v);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.01);
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.01);
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.count(), 10_000);
    }
}
