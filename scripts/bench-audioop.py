#!/usr/bin/env python3
"""The same 20 ms frame work as media-worker/benches/frame_path.rs, done with CPython's
audioop (C code) and json/base64: the baseline the Rust path is compared against.
Needs CPython <= 3.12 (audioop was removed in 3.13)."""
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

import audioop  # noqa: E402  (after the filter: it warns on import)
import base64  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import struct  # noqa: E402
import timeit  # noqa: E402

def tone(rate, samples):
    return struct.pack("<%dh" % samples, *(int(9000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(samples)))

twilio_frame = json.dumps({"event": "media", "sequenceNumber": "42", "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
    "media": {"track": "inbound", "chunk": "41", "timestamp": "820",
              "payload": base64.b64encode(audioop.lin2ulaw(tone(8000, 160), 2)).decode()}})
openai_delta = json.dumps({"type": "response.output_audio.delta", "event_id": "event_9", "response_id": "resp_1",
    "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": base64.b64encode(tone(24000, 480)).decode()})

state_in = None
state_out = None

def twilio_to_openai():
    global state_in
    media = json.loads(twilio_frame)["media"]["payload"]
    linear = audioop.ulaw2lin(base64.b64decode(media), 2)
    resampled, state_in = audioop.ratecv(linear, 2, 1, 8000, 24000, state_in)
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(resampled).decode()})

def openai_to_twilio():
    global state_out
    delta = json.loads(openai_delta)["delta"]
    resampled, state_out = audioop.ratecv(base64.b64decode(delta), 2, 1, 24000, 8000, state_out)
    codes = audioop.lin2ulaw(resampled, 2)
    return json.dumps({"event": "media", "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
                       "media": {"payload": base64.b64encode(codes).decode()}})

def both():
    twilio_to_openai()
    openai_to_twilio()

for name, fn in [("twilio_to_openai", twilio_to_openai), ("openai_to_twilio", openai_to_twilio), ("both_ways", both)]:
    runs = 20000
    best = min(timeit.repeat(fn, number=runs, repeat=5)) / runs
    print(f"audioop frame_pcm24k/{name}: {best * 1e6:.2f} µs per frame")
