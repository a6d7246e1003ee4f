"""bench/results.json (for machines) and bench/RESULTS.md (for people).

RESULTS.md is regenerated on every run except for its "## Profiling" section
onwards, which holds the written record of what was optimised and why. A run
of some stages only (``savin bench --only``) gives the rows of those.
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


def mmm(figure: dict, unit: str = "", percent: bool = False, bold: bool = False) -> str:
    """``min / median / max`` of a figure over the runs."""
    def one(v: float) -> str:
        return f"{v:.0%}" if percent else f"{v:,}{unit}"

    text = " / ".join(one(figure[k]) for k in ("min", "median", "max"))
    return f"**{text}**" if bold else text


def _rows(d: dict) -> list[str]:
    t = d["targets"]
    runs = d["sizes"]["runs"]

    def mark(name: str) -> str:
        if name not in t:
            return ""
        return "met" if t[name]["met"] else "**missed**"

    rows = []
    if "match" in d:
        mt = d["match"]
        rows += [
            f"| 1 | baseline: raw aiokafka consume → produce, {mt['events']:,} messages of {mt['message_bytes']}"
            f" bytes, {runs} run(s) | {mmm(mt['baseline.per_second'], bold=True)} messages/s | the ceiling |",
            f"| 2 | match: {mt['events']:,} events against {mt['registrations']:,} registrations over "
            f"{mt['offenders']:,} offenders → {mt['notices']:,} notice jobs, {runs} run(s), each against its own"
            f" baseline | {mmm(mt['events_per_second'])} events/s ({mmm(mt['notices_per_second'])} notices/s"
            f" out), {mmm(mt['ratio_to_baseline'], percent=True, bold=True)} of baseline"
            f" | ≥ 60 % each run ({mark('match_ratio')}) |",
        ]
    if "send" in d:
        s = d["send"]
        rows.append(f"| 3 | send: {s['notices']:,} SMS notices through the deliver stage, fake Twilio adding "
                    f"{s['provider_latency_ms']} ms | **{s['per_second']:,} notices/s** | ≥ 500"
                    f" ({mark('send_per_second')}) |")
    if "latency" in d:
        lt = d["latency"]
        rows.append(
            f"| 4 | latency: {lt['offered_per_second']} events/s offered for {lt['seconds']:.0f} s, publish → "
            f"accepted by the fake Twilio, {runs} run(s) | p50 {mmm(lt['p50_ms'], ' ms')}, p95"
            f" {mmm(lt['p95_ms'], ' ms')}, **p99 {mmm(lt['p99_ms'], ' ms')}**, max {mmm(lt['max_ms'], ' ms')}"
            f" (of which publish → notice job: p50 {mmm(lt['to_notice_job.p50_ms'], ' ms')}, p99"
            f" {mmm(lt['to_notice_job.p99_ms'], ' ms')}) | p99 ≤ 250 ms each run ({mark('latency_p99_ms')}) |")
    if "recovery" in d:
        r = d["recovery"]
        rows += [
            f"| 5 | recovery: restart a worker holding {r['registrations']:,} registrations"
            f" | **{r['seconds_to_first_notice']} s** to the first notice | ≤ 30 s ({mark('recovery_seconds')}) |",
            f"| 5 | peak RSS of the worker (loading {r['peak_rss_mb_loading']} MB, restart"
            f" {r['peak_rss_mb_restart']} MB) | **{r['peak_rss_mb']} MB** | ≤ 400 MB ({mark('peak_rss_mb')}) |",
        ]
    if "acknowledgement" in d:
        ack = d["acknowledgement"]
        rows.append(
            f"| 6 | acknowledgement: {ack['events']} ESCAPED events one a second, each to a registrant whose"
            f" number gets the text and then the call at once; the scripted callee types the PIN and presses 1"
            f" | publish → acknowledged p50 {ack['p50_ms']} ms, p95 {ack['p95_ms']} ms, max {ack['max_ms']} ms;"
            f" **{ack['steps_after_acknowledgement']} steps sent after it** ({ack['calls']} calls in all)"
            f" | no step after it |")
    if "burst" in d:
        b = d["burst"]
        rows.append(
            f"| 7 | burst: {b['events']:,} RELEASED events, 2 registrations each with SMS and email"
            f" ({b['notices']:,} notices), the fake Twilio allowing {b['sms_limit_per_second']} messages/s,"
            f" hold rules off | {'drained' if b['drained'] else '**not drained**'} in"
            f" {b['seconds_to_drain']} s ({b['sms']:,} SMS, {b['email']:,} emails); SMS at"
            f" {b['sms_per_second']}/s, **{b['share_of_limit']:.0%} of the limit**,"
            f" **{b['too_many_requests']} × 429** | ≥ 95 % ({mark('burst_share_of_limit')}), 0 × 429"
            f" ({mark('burst_429s')}) |")
    if "backlog" in d:
        g = d["backlog"]
        rows.append(
            f"| 8 | backlog: {g['routine_notices']:,} routine SMS notices queued, the fake Twilio allowing"
            f" {g['sms_limit_per_second']} messages/s; an ESCAPED event published with"
            f" {g['routine_waiting_at_publish']:,} of them still waiting | its notice accepted"
            f" **{g['urgent_seconds']} s** after publishing (routine at {g['routine_sms_per_second']}/s,"
            f" {g['too_many_requests']} × 429) | ≤ 2 s ({mark('backlog_urgent_seconds')}) |")
    if "cluster" in d:
        c = d["cluster"]
        if c.get("measured"):
            rows.append(
                f"| 9 | match on a three-broker cluster (replication 3, min.insync.replicas 2, acks=all), 3 match"
                f" workers, {c['events']:,} events | baseline {c['baseline']['per_second']:,} messages/s;"
                f" {c['events_per_second']:,} events/s, **{c['ratio_to_baseline']:.0%} of baseline** | a figure |")
        else:
            rows.append(f"| 9 | match on a three-broker cluster, 3 workers | not measured: {c['reason']} | a figure |")
    return rows


def render_markdown(d: dict) -> str:
    m, z = d["machine"], d["sizes"]
    lines = [
        "# savin benchmark",
        "",
        f"Run `{d['run']['label']}` at {d['run']['at']}, {d['run']['seconds']:.0f} s in all, with `savin bench`"
        " against a single-node Kafka broker it started itself (figure 9: a cluster of three); every worker ran"
        " as its own process, and so did the fake Twilio and the SMTP server.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB memory. Python {m['python']}, "
        f"Apache Kafka {m['kafka']}, faust-streaming {m['faust-streaming']}, aiokafka {m['aiokafka']}, "
        f"twilio {m['twilio']}, savin {m['savin']}. Topics have {z['partitions']} partitions.",
        "",
        "Figures of several runs are min / median / max; a target is judged on every run (the worst must meet"
        " it).",
        "",
        "| # | measurement | result | target |",
        "|---|---|---|---|",
        *_rows(d),
        "",
        "How each figure is taken: throughput is the rate between the 10th and 90th percentile"
        " of the output's own timestamps (Kafka record timestamps, or the fake Twilio's acceptance"
        " times), so start-up and stragglers do not count; the match rate counts events, proportionally"
        " to the notices they produced, and each match run is judged against the baseline measured just"
        " before it. Latency is the wall-clock time from handing the event to the"
        " producer to the fake Twilio accepting the SMS. Recovery is from launching the worker process to"
        " the fake Twilio accepting the notice for an event published at that moment. Acknowledgement is from"
        " handing the event to the producer to the acknowledgement the keypad's 1 records; a step after it is"
        " any text or call to that number later than the acknowledgement, counted 9 s on (three repeat"
        " intervals of its ladder). The burst's time to drain runs from publishing the first event to the last"
        " notice accepted (SMS or email), its rate is the SMS rate between the 10th and 90th percentile, and"
        " a 429 is any request the fake Twilio refused for its limit. The backlog's figure runs from handing"
        " the urgent event to the producer to the fake Twilio accepting its SMS.",
        "",
        "Reproduce: `make bench` (about 15 minutes on 2 cores), or `savin bench --quick` (under 3 minutes,"
        " smaller sizes, one run each); `savin bench --only STAGE` runs one stage.",
        "",
    ]
    return "\n".join(lines)
