"""bench/results.json (for machines) and bench/RESULTS.md (for people).

RESULTS.md is regenerated on every run except for its "## Profiling" section
onwards, which holds the written record of what was optimised and why.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_results", "render_markdown"]

KEEP_FROM = "## Profiling"


def write_results(document: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    md = out_dir / "RESULTS.md"
    kept = ""
    if md.exists():
        text = md.read_text()
        if KEEP_FROM in text:
            kept = "\n" + text[text.index(KEEP_FROM):]
    md.write_text(render_markdown(document) + kept)


def render_markdown(d: dict) -> str:
    m, z = d["machine"], d["sizes"]
    b, mt, s, lt, r = d["baseline"], d["match"], d["send"], d["latency"], d["recovery"]
    ack = d["acknowledgement"]
    t = d["targets"]

    def mark(name: str) -> str:
        return "met" if t[name]["met"] else "**missed**"

    lines = [
        "# savin benchmark",
        "",
        f"Run `{d['run']['label']}` at {d['run']['at']}, {d['run']['seconds']:.0f} s in all, with `savin bench`"
        " against a single-node Kafka broker it started itself; every worker ran as its own process.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB memory. Python {m['python']}, "
        f"Apache Kafka {m['kafka']}, faust-streaming {m['faust-streaming']}, aiokafka {m['aiokafka']}, "
        f"twilio {m['twilio']}, savin {m['savin']}. Topics have {z['partitions']} partitions.",
        "",
        "| # | measurement | result | target |",
        "|---|---|---|---|",
        f"| 1 | baseline: raw aiokafka consume → produce, {b['messages']:,} messages of {b['message_bytes']} bytes"
        f" | **{b['per_second']:,} messages/s** | the ceiling |",
        f"| 2 | match: {mt['events']:,} events against {mt['registrations']:,} registrations over "
        f"{mt['offenders']:,} offenders → {mt['notices']:,} notice jobs"
        f" | **{mt['events_per_second']:,} events/s** ({mt['notices_per_second']:,} notices/s out), "
        f"**{mt['ratio_to_baseline']:.0%} of baseline** | ≥ 50 % ({mark('match_ratio')}) |",
        f"| 3 | send: {s['notices']:,} SMS notices through the deliver stage, fake Twilio adding "
        f"{s['provider_latency_ms']} ms | **{s['per_second']:,} notices/s** | ≥ 500 ({mark('send_per_second')}) |",
        f"| 4 | latency: {lt['offered_per_second']} events/s offered for {lt['seconds']:.0f} s, publish → "
        f"accepted by the fake Twilio | p50 {lt['p50_ms']} ms, p95 {lt['p95_ms']} ms, "
        f"**p99 {lt['p99_ms']} ms**, max {lt['max_ms']} ms (of which publish → notice job: p50 "
        f"{lt['to_notice_job']['p50_ms']} ms, p99 {lt['to_notice_job']['p99_ms']} ms) | "
        f"p99 ≤ 500 ms ({mark('latency_p99_ms')}) |",
        f"| 5 | recovery: restart a worker holding {r['registrations']:,} registrations"
        f" | **{r['seconds_to_first_notice']} s** to the first notice | ≤ 30 s ({mark('recovery_seconds')}) |",
        f"| 5 | peak RSS of the worker (loading {r['peak_rss_mb_loading']} MB, restart {r['peak_rss_mb_restart']} MB)"
        f" | **{r['peak_rss_mb']} MB** | ≤ 400 MB ({mark('peak_rss_mb')}) |",
        f"| 6 | acknowledgement: {ack['events']} ESCAPED events one a second, each to a registrant whose number"
        f" gets the text and then the call at once; the scripted callee types the PIN and presses 1"
        f" | publish → acknowledged p50 {ack['p50_ms']} ms, p95 {ack['p95_ms']} ms, max {ack['max_ms']} ms;"
        f" **{ack['steps_after_acknowledgement']} steps sent after it** ({ack['calls']} calls in all)"
        f" | no step after it |",
        "",
        "How each figure is taken: throughput is the rate between the 10th and 90th percentile"
        " of the output's own timestamps (Kafka record timestamps, or the fake Twilio's acceptance"
        " times), so start-up and stragglers do not count; the match rate counts events, proportionally"
        " to the notices they produced. Latency is the wall-clock time from handing the event to the"
        " producer to the fake Twilio accepting the SMS. Recovery is from launching the worker process to"
        " the fake Twilio accepting the notice for an event published at that moment. Acknowledgement is from"
        " handing the event to the producer to the acknowledgement the keypad's 1 records; a step after it is"
        " any text or call to that number later than the acknowledgement, counted 9 s on (three repeat"
        " intervals of its ladder).",
        "",
        "Reproduce: `make bench` (about 4 minutes on 2 cores), or `savin bench --quick` (under 2 minutes, smaller sizes).",
        "",
    ]
    return "\n".join(lines)
