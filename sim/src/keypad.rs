//! What a phone line's far end hears of key presses: a Goertzel detector for the DTMF
//! tone pairs in the caller's audio, as an exchange or an IVR listens for them. It reads
//! the sound only (it knows nothing of why the caller pressed), so a test of a phone
//! menu passes only if the right tones were really on the line.

const SAMPLE_RATE: f64 = 8_000.0;
const LOW: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const HIGH: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];
/// Below this RMS a block is silence, whatever its spectrum.
const QUIET_RMS: f64 = 300.0;
/// A tone carries at least this share of the block's energy; a stray bin far less.
const TONE_SHARE: f64 = 0.25;
const STRAY_SHARE: f64 = 0.08;
/// Blocks (20 ms each) a key must sound for before it counts: 40 ms, as exchanges ask.
const BLOCKS_TO_COUNT: u32 = 2;

/// The share of `samples`' energy at `frequency` (Goertzel): about 0.5 for each tone
/// of a key, near 0 for a frequency that is not there.
fn share(samples: &[f64], energy: f64, frequency: f64) -> f64 {
    let coefficient = 2.0 * (std::f64::consts::TAU * frequency / SAMPLE_RATE).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in samples {
        let s = x + coefficient * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    power / (energy * samples.len() as f64 / 2.0)
}

/// The key sounding in one block, if exactly one tone of each group stands out.
fn key_in(block: &[i16]) -> Option<char> {
    let samples: Vec<f64> = block.iter().map(|&s| f64::from(s)).collect();
    let energy: f64 = samples.iter().map(|x| x * x).sum();
    if samples.is_empty() || (energy / samples.len() as f64).sqrt() < QUIET_RMS {
        return None;
    }
    let strongest = |group: &[f64; 4]| {
        let shares: Vec<f64> = group.iter().map(|f| share(&samples, energy, *f)).collect();
        let (best, top) =
            shares.iter().enumerate().fold((0, 0.0), |acc, (i, s)| if *s > acc.1 { (i, *s) } else { acc });
        let clean = shares.iter().enumerate().all(|(i, s)| i == best || *s < STRAY_SHARE);
        (top >= TONE_SHARE && clean).then_some(best)
    };
    Some(KEYS[strongest(&LOW)?][strongest(&HIGH)?])
}

/// Listens to 20 ms blocks of the caller's audio and counts each key once, when it
/// has sounded for two blocks in a row.
#[derive(Debug, Default)]
pub struct KeyDetector {
    sounding: Option<char>,
    blocks: u32,
    heard: String,
}

impl KeyDetector {
    /// One block of 8 kHz samples; the key if one has just counted.
    pub fn push(&mut self, block: &[i16]) -> Option<char> {
        let key = key_in(block);
        if key != self.sounding {
            self.sounding = key;
            self.blocks = 0;
        }
        let key = key?;
        self.blocks += 1;
        if self.blocks == BLOCKS_TO_COUNT {
            self.heard.push(key);
            return Some(key);
        }
        None
    }

    /// Every key heard so far, in order.
    pub fn heard(&self) -> &str {
        &self.heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(mulaw: &[u8]) -> Vec<i16> {
        let mut linear = vec![0i16; mulaw.len()];
        let _ = shared::codec::mulaw::decode(mulaw, &mut linear);
        linear
    }

    #[test]
    fn hears_each_key_of_a_sequence_once_and_nothing_in_silence_or_a_single_tone() {
        let audio = decoded(&shared::codec::dtmf::tones("2w#90*").unwrap_or_default());
        let mut detector = KeyDetector::default();
        for block in audio.chunks(160) {
            detector.push(block);
        }
        assert_eq!(detector.heard(), "2#90*");

        let mut detector = KeyDetector::default();
        let tone: Vec<i16> =
            (0..1600).map(|n| (8000.0 * (std::f64::consts::TAU * 941.0 * n as f64 / 8000.0).sin()) as i16).collect();
        for block in tone.chunks(160).chain([&[0i16; 160][..]]) {
            detector.push(block);
        }
        assert_eq!(detector.heard(), "", "one tone alone is not a key");
    }
}
