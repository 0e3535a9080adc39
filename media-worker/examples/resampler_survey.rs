//! How each candidate resampler configuration behaves on the telephone band, both ways
//! (8 → 24 kHz toward OpenAI, 24 → 8 kHz toward Twilio), fed 20 ms chunks as the worker
//! feeds them: the algorithmic delay (where an impulse comes out), the passband's gain
//! from 300 to 3,400 Hz, and how far the first image/alias of 3.4 kHz (4.6 kHz) is
//! pushed down. `cargo run --release -p media-worker --example resampler_survey`.
//! docs/performance.md gives the table this prints and why the worker's choice won.

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

type Make = Box<dyn Fn(usize, usize, usize) -> Box<dyn Resampler<f32>>>;

/// Runs `input` through `resampler` in chunks of `chunk` samples.
fn run(resampler: &mut dyn Resampler<f32>, input: &[f32], chunk: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; resampler.output_frames_max()];
    let mut all = Vec::new();
    for piece in input.chunks_exact(chunk) {
        let buffer_in = SequentialSlice::new(piece, 1, chunk).expect("one channel");
        let frames = out.len();
        let mut buffer_out = SequentialSlice::new_mut(&mut out, 1, frames).expect("one channel");
        let (_, written) = resampler.process_into_buffer(&buffer_in, &mut buffer_out, None).expect("resample");
        all.extend_from_slice(&out[..written]);
    }
    all
}

/// Amplitude of `hz` in `samples` (least-squares fit of a sine and a cosine).
fn amplitude(samples: &[f32], rate: f32, hz: f32) -> f32 {
    fit(samples, rate, hz).0
}

/// The fitted tone's amplitude, and what is left after removing it (RMS): distortion,
/// noise and anything a frame edge adds.
fn fit(samples: &[f32], rate: f32, hz: f32) -> (f32, f32) {
    let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (n, &y) in samples.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * f64::from(hz) * n as f64 / f64::from(rate);
        let (s, c) = w.sin_cos();
        ss += s * s;
        cc += c * c;
        sc += s * c;
        ys += f64::from(y) * s;
        yc += f64::from(y) * c;
    }
    let det = ss * cc - sc * sc;
    let a = (ys * cc - yc * sc) / det;
    let b = (yc * ss - ys * sc) / det;
    let mut residual = 0f64;
    for (n, &y) in samples.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * f64::from(hz) * n as f64 / f64::from(rate);
        residual += (f64::from(y) - a * w.sin() - b * w.cos()).powi(2);
    }
    ((a * a + b * b).sqrt() as f32, (residual / samples.len() as f64).sqrt() as f32)
}

fn tone(rate: usize, hz: f32, samples: usize) -> Vec<f32> {
    (0..samples).map(|n| 0.5 * (2.0 * std::f32::consts::PI * hz * n as f32 / rate as f32).sin()).collect()
}

/// (delay ms, min gain dB, max gain dB over 300–3,400 Hz, 4.6 kHz → dB, what is left
/// of a 1 kHz tone besides the tone, dB below it).
fn measure(make: &Make, rate_in: usize, rate_out: usize) -> (f32, f32, f32, f32, f32) {
    let chunk = rate_in / 50;
    let second = rate_in;
    // An impulse in the middle of the tenth chunk.
    let mut impulse = vec![0.0f32; second];
    let at = 9 * chunk + chunk / 2;
    impulse[at] = 1.0;
    let out = run(make(rate_in, rate_out, chunk).as_mut(), &impulse, chunk);
    let peak = out.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).map_or(0, |(n, _)| n);
    let delay_ms = (peak as f32 / rate_out as f32 - at as f32 / rate_in as f32) * 1000.0;
    let (mut lo, mut hi) = (f32::MAX, f32::MIN);
    let skip = rate_out / 10;
    let mut hz = 300.0;
    while hz <= 3_400.0 {
        let out = run(make(rate_in, rate_out, chunk).as_mut(), &tone(rate_in, hz, second), chunk);
        let db = 20.0 * (amplitude(&out[skip..], rate_out as f32, hz) / 0.5).log10();
        lo = lo.min(db);
        hi = hi.max(db);
        hz += 50.0;
    }
    // Up: a 3.4 kHz tone's image at 4.6 kHz; down: a 4.6 kHz tone's alias at 3.4 kHz.
    let (fed, heard) = if rate_out > rate_in { (3_400.0, 4_600.0) } else { (4_600.0, 3_400.0) };
    let out = run(make(rate_in, rate_out, chunk).as_mut(), &tone(rate_in, fed, second), chunk);
    let stray = 20.0 * (amplitude(&out[skip..], rate_out as f32, heard) / 0.5).log10();
    let out = run(make(rate_in, rate_out, chunk).as_mut(), &tone(rate_in, 1_000.0, second), chunk);
    let (level, rest) = fit(&out[skip..], rate_out as f32, 1_000.0);
    (delay_ms, lo, hi, stray, 20.0 * (rest / level).log10())
}

/// Resamples `frames` 20 ms frames each way, for `valgrind --tool=callgrind
/// --toggle-collect='*cost_of*'`: instructions per frame pair without the set-up.
#[inline(never)]
fn cost_of(up: &mut dyn Resampler<f32>, down: &mut dyn Resampler<f32>, frames: usize) -> f32 {
    let (narrow, wide) = (tone(8_000, 1_000.0, 160), tone(24_000, 1_000.0, 480));
    let mut sum = 0.0;
    for _ in 0..frames {
        sum += run(up, &narrow, 160)[0] + run(down, &wide, 480)[0];
    }
    sum
}

fn fft(sub_chunks: usize, window: WindowFunction, fixed: FixedSync) -> Make {
    Box::new(move |rate_in, rate_out, chunk| {
        Box::new(Fft::<f32>::new_custom(rate_in, rate_out, chunk, sub_chunks, 1, window, fixed).expect("fft"))
    })
}

/// A sinc filter whose length is `ms` of delay each way.
fn sinc(ms: usize, window: WindowFunction, cutoff: Option<f32>) -> Make {
    Box::new(move |rate_in, rate_out, chunk| {
        // Delay is half the filter, counted at the input rate.
        let sinc_len = 2 * ms * rate_in / 1000;
        let ratio = rate_out as f64 / rate_in as f64;
        let mut parameters = SincInterpolationParameters::new(sinc_len, window)
            .interpolation(SincInterpolationType::Nearest)
            .oversampling_factor(if ratio > 1.0 { 3 } else { 1 });
        if let Some(cutoff) = cutoff {
            parameters = parameters.f_cutoff(cutoff);
        }
        Box::new(Async::<f32>::new_sinc(ratio, 1.0, &parameters, chunk, 1, FixedAsync::Input).expect("sinc"))
    })
}

fn main() {
    use WindowFunction::*;
    let cost = std::env::args().nth(1);
    let candidates: Vec<(String, Make)> = vec![
        ("Fft, one 20 ms block (as rubato 0.16's FftFixedInOut)".into(), fft(1, BlackmanHarris2, FixedSync::Both)),
        ("Fft, 2 sub-chunks, BlackmanHarris2".into(), fft(2, BlackmanHarris2, FixedSync::Input)),
        ("Fft, 4 sub-chunks, BlackmanHarris2".into(), fft(4, BlackmanHarris2, FixedSync::Input)),
        ("Fft, 4 sub-chunks, Hann".into(), fft(4, Hann, FixedSync::Input)),
        ("Fft, 4 sub-chunks, Hann2".into(), fft(4, Hann2, FixedSync::Input)),
        ("Fft, 5 sub-chunks, Hann".into(), fft(5, Hann, FixedSync::Input)),
        ("Fft, 5 sub-chunks, Blackman".into(), fft(5, Blackman, FixedSync::Input)),
        ("sinc 3 ms, BlackmanHarris2, auto cutoff".into(), sinc(3, BlackmanHarris2, None)),
        ("sinc 3 ms, Blackman, auto cutoff".into(), sinc(3, Blackman, None)),
        ("sinc 3 ms, Blackman, cutoff 0.97".into(), sinc(3, Blackman, Some(0.97))),
        ("sinc 3 ms, Blackman, cutoff 1.0".into(), sinc(3, Blackman, Some(1.0))),
        ("sinc 3 ms, Blackman2, cutoff 1.0".into(), sinc(3, Blackman2, Some(1.0))),
        ("sinc 3 ms, BlackmanHarris, cutoff 1.0".into(), sinc(3, BlackmanHarris, Some(1.0))),
        ("sinc 2 ms, Blackman, cutoff 1.0".into(), sinc(2, Blackman, Some(1.0))),
        ("sinc 2 ms, Hann, cutoff 1.0".into(), sinc(2, Hann, Some(1.0))),
    ];
    if let Some(index) = cost.and_then(|arg| arg.parse::<usize>().ok()) {
        let make = &candidates[index].1;
        let (mut up, mut down) = (make(8_000, 24_000, 160), make(24_000, 8_000, 480));
        println!("{}: {}", candidates[index].0, cost_of(up.as_mut(), down.as_mut(), 1_000));
        return;
    }
    println!("| resampler | delay 8→24 / 24→8 kHz | gain 300–3,400 Hz (min / max dB), 8→24 | same, 24→8 | 4.6 kHz image (8→24) / alias (24→8) | 1 kHz: the rest, below the tone (8→24 / 24→8) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, make) in &candidates {
        let up = measure(make, 8_000, 24_000);
        let down = measure(make, 24_000, 8_000);
        println!(
            "| {name} | {:.2} / {:.2} ms | {:+.2} / {:+.2} | {:+.2} / {:+.2} | {:.1} / {:.1} dB | {:.1} / {:.1} dB |",
            up.0, down.0, up.1, up.2, down.1, down.2, up.3, down.3, up.4, down.4
        );
    }
}
