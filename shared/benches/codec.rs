//! G.711 mu-law throughput, every backend side by side (the scalar reference first).
//! `cargo bench -p shared --bench codec`; docs/performance.md has the figures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shared::codec::mulaw::{self, Backend};

/// Speech-like input: a sum of tones with a slow envelope, deterministic.
fn speech(samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            let t = n as f32 / 8000.0;
            let envelope = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 3.0 * t).sin();
            let voice =
                (2.0 * std::f32::consts::PI * 180.0 * t).sin() + 0.5 * (2.0 * std::f32::consts::PI * 720.0 * t).sin();
            (envelope * voice * 12_000.0) as i16
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    for samples in [160usize, 8_000] {
        let linear = speech(samples);
        let mut codes = vec![0u8; samples];
        mulaw::encode(&linear, &mut codes).unwrap();
        let mut out_codes = vec![0u8; samples];
        let mut out_linear = vec![0i16; samples];

        let mut group = c.benchmark_group("mulaw_decode");
        group.throughput(Throughput::Elements(samples as u64));
        for backend in Backend::available() {
            group.bench_with_input(BenchmarkId::new(backend.name(), samples), &codes, |b, codes| {
                b.iter(|| mulaw::decode_with(backend, std::hint::black_box(codes), &mut out_linear))
            });
        }
        group.finish();

        let mut group = c.benchmark_group("mulaw_encode");
        group.throughput(Throughput::Elements(samples as u64));
        for backend in Backend::available() {
            group.bench_with_input(BenchmarkId::new(backend.name(), samples), &linear, |b, linear| {
                b.iter(|| mulaw::encode_with(backend, std::hint::black_box(linear), &mut out_codes))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
