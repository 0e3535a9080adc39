//! DTMF key presses as in-band audio: the tone pairs of ITU-T Q.23 (a low-group and a
//! high-group frequency per key), at telephone levels and durations, as 8 kHz mu-law
//! ready for a Twilio media stream. Twilio Media Streams cannot send DTMF events on a
//! bidirectional stream, and replacing the call's TwiML with `<Play digits>` would end
//! the stream, so the keys are played as sound, the way a handset's keypad does.
//!
//! Timing follows Q.24's ranges with room to spare: each key sounds for
//! [`TONE_MS`] and is followed by [`GAP_MS`] of silence (receivers need about 40 ms of
//! each); `w` is a half-second pause, as in Twilio's `SendDigits`. Each of the two
//! tones is at about −7 dBm0 (an amplitude of a quarter of full scale), within the
//! levels exchanges expect.

use std::f64::consts::TAU;

use super::mulaw;

pub const SAMPLE_RATE: u32 = 8_000;
pub const TONE_MS: u32 = 100;
pub const GAP_MS: u32 = 100;
pub const PAUSE_MS: u32 = 500;
/// The most keys one press may ask for (a long extension and its `#`).
pub const MAX_KEYS: usize = 24;
/// Each tone's amplitude, as a fraction of full scale.
const TONE_AMPLITUDE: f64 = 0.25;
/// mu-law silence.
const SILENCE: u8 = 0xFF;
/// Twilio media frames are 20 ms of 8 kHz mu-law.
const FRAME_BYTES: usize = 160;

/// The (low, high) frequency pair of a key, in Hz.
pub fn frequencies(key: char) -> Option<(f64, f64)> {
    let (row, column) = match key {
        '1' => (0, 0),
        '2' => (0, 1),
        '3' => (0, 2),
        'A' => (0, 3),
        '4' => (1, 0),
        '5' => (1, 1),
        '6' => (1, 2),
        'B' => (1, 3),
        '7' => (2, 0),
        '8' => (2, 1),
        '9' => (2, 2),
        'C' => (2, 3),
        '*' => (3, 0),
        '0' => (3, 1),
        '#' => (3, 2),
        'D' => (3, 3),
        _ => return None,
    };
    const LOW: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    Some((LOW[row], HIGH[column]))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("no keys to press")]
    Empty,
    #[error("at most {MAX_KEYS} keys at once")]
    TooMany,
    #[error("'{0}' is not a key: use 0-9, * and #, and w for a half-second pause")]
    NotAKey(char),
}

/// Checks a key sequence: `0-9`, `*`, `#`, and `w` (a pause).
pub fn check(keys: &str) -> Result<(), KeysError> {
    if keys.is_empty() {
        return Err(KeysError::Empty);
    }
    if keys.chars().count() > MAX_KEYS {
        return Err(KeysError::TooMany);
    }
    match keys.chars().find(|c| !(c.is_ascii_digit() || matches!(c, '*' | '#' | 'w' | 'W'))) {
        Some(bad) => Err(KeysError::NotAKey(bad)),
        None => Ok(()),
    }
}

/// The keys as 8 kHz mu-law, in whole 20 ms frames (the last padded with silence).
pub fn tones(keys: &str) -> Result<Vec<u8>, KeysError> {
    check(keys)?;
    let mut linear: Vec<i16> = Vec::new();
    let samples = |ms: u32| (SAMPLE_RATE / 1000 * ms) as usize;
    for key in keys.chars() {
        match frequencies(key) {
            Some((low, high)) => {
                linear.extend((0..samples(TONE_MS)).map(|n| {
                    let t = n as f64 / f64::from(SAMPLE_RATE);
                    let value = TONE_AMPLITUDE * ((TAU * low * t).sin() + (TAU * high * t).sin());
                    (value * f64::from(i16::MAX)) as i16
                }));
                linear.extend(std::iter::repeat_n(0, samples(GAP_MS)));
            }
            // `w` (checked above: nothing else gets here).
            None => linear.extend(std::iter::repeat_n(0, samples(PAUSE_MS))),
        }
    }
    let mut encoded = vec![SILENCE; linear.len().div_ceil(FRAME_BYTES) * FRAME_BYTES];
    let sound = linear.len();
    mulaw::encode(&linear, &mut encoded[..sound]).map_err(|_| KeysError::Empty)?;
    Ok(encoded)
}

/// How long `keys` take to play, in milliseconds.
pub fn duration_ms(keys: &str) -> u32 {
    keys.chars().map(|c| if frequencies(c).is_some() { TONE_MS + GAP_MS } else { PAUSE_MS }).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The power of `frequency` in `samples` (Goertzel), relative to the block's energy.
    fn share(samples: &[f64], frequency: f64) -> f64 {
        let coefficient = 2.0 * (TAU * frequency / f64::from(SAMPLE_RATE)).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in samples {
            let s = x + coefficient * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
        let energy: f64 = samples.iter().map(|x| x * x).sum();
        power / (energy * samples.len() as f64 / 2.0)
    }

    fn decoded(mulaw_bytes: &[u8]) -> Vec<f64> {
        let mut linear = vec![0i16; mulaw_bytes.len()];
        mulaw::decode(mulaw_bytes, &mut linear).expect("same lengths");
        linear.into_iter().map(f64::from).collect()
    }

    #[test]
    fn each_key_sounds_its_own_two_tones_and_nothing_of_the_others() {
        for key in "0123456789*#".chars() {
            let audio = decoded(&tones(&key.to_string()).expect("a key"));
            let tone = &audio[..800];
            let (low, high) = frequencies(key).expect("a key");
            assert!(
                share(tone, low) > 0.4 && share(tone, high) > 0.4,
                "{key}: {} {}",
                share(tone, low),
                share(tone, high)
            );
            for other in [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0] {
                if other != low && other != high {
                    assert!(share(tone, other) < 0.02, "{key} leaks into {other} Hz");
                }
            }
            assert!(audio[800..].iter().all(|s| s.abs() < 16.0), "{key}: silence after the tone");
        }
    }

    #[test]
    fn keys_play_in_whole_frames_at_telephone_timing() {
        let audio = tones("2w#").expect("keys");
        assert_eq!(audio.len() % 160, 0);
        assert_eq!(audio.len(), 8 * duration_ms("2w#") as usize, "200 + 500 + 200 ms");
        let level = decoded(&audio[..800]).iter().map(|s| s * s).sum::<f64>() / 800.0;
        let dbfs = 10.0 * (level / f64::from(i16::MAX).powi(2)).log10();
        assert!((-13.0..=-8.0).contains(&dbfs), "two tones at a quarter of full scale each: {dbfs:.1} dBFS");
    }

    #[test]
    fn anything_but_keys_and_pauses_is_refused() {
        assert_eq!(tones(""), Err(KeysError::Empty));
        assert_eq!(tones("2 then 3"), Err(KeysError::NotAKey(' ')));
        assert_eq!(tones(&"1".repeat(MAX_KEYS + 1)), Err(KeysError::TooMany));
        assert!(tones("ww123#").is_ok());
    }
}
