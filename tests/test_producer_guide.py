"""The producer guide (docs/producers.md) and the AsyncAPI document
(docs/asyncapi.yaml) say what the code does: every topic is described, and the
partitioning figures the guide prints are the ones the code gives."""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import pytest
import yaml

from savin.schemas.export import published_schemas
from savin.schemas.registration import StoredRegistration
from savin.settings import load_settings
from savin.topics import Topics, partition_for

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDE = DOCS / "producers.md"
ASYNCAPI = DOCS / "asyncapi.yaml"

#: The offender ids the guide measures.
KEYS = [f"MO-{1000000 + i}".encode() for i in range(200)]

#: The partition of each of KEYS on 4 partitions, in order, as the Java client
#: computes it: Utils.toPositive(Utils.murmur2(key)) % 4 with kafka-clients 3.9.1
#: (tests/test_broker.py checks other keys). librdkafka 2.16.0 put every key on
#: the same partition with partitioner=murmur2_random.
JAVA_MURMUR2_4 = (
    "3112010312222110202101020112202110032322113213201010311220111033"
    "1202101110233221320331202131332321011121331302030102130100301020"
    "0030232332200233221032220303001022313110101131313002121121223200"
    "31011332"
)

#: Where librdkafka 2.16.0 (confluent-kafka 2.16.1) put each of KEYS on a
#: 4-partition topic with its default partitioner (consistent_random).
LIBRDKAFKA_DEFAULT_4 = (
    "0202131320131302023120203131023131202013020213132013130202312020"
    "3131023131202013020213132013130202313131202013202031310213130202"
    "3102021313203131202013202031310213130202310202131320313120201320"
    "20313102"
)


def crc32_partition(key: bytes, partitions: int) -> int:
    """librdkafka's consistent partitioner (rd_kafka_msg_partitioner_consistent):
    rd_crc32(key, keylen) % partition_cnt, the standard CRC-32 that zlib computes."""
    return zlib.crc32(key) % partitions


def differing(partitions: int) -> int:
    return sum(crc32_partition(k, partitions) != partition_for(k, partitions) for k in KEYS)


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def asyncapi() -> dict:
    return yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))


@pytest.fixture
def default_topics(monkeypatch) -> Topics:
    """Topics under default settings: no SAVIN_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith("SAVIN_"):
            monkeypatch.delenv(name)
    return Topics(load_settings(_env_file=None))


# ---- murmur2, as the guide states it -------------------------------------------------------


def test_partition_for_is_the_java_clients_murmur2():
    assert len(JAVA_MURMUR2_4) == len(KEYS)
    assert "".join(str(partition_for(k, 4)) for k in KEYS) == JAVA_MURMUR2_4


def test_crc32_is_what_librdkafka_does_by_default():
    assert len(LIBRDKAFKA_DEFAULT_4) == len(KEYS)
    assert "".join(str(crc32_partition(k, 4)) for k in KEYS) == LIBRDKAFKA_DEFAULT_4


def test_the_guides_headline_figure_is_measured(guide):
    figures = re.findall(r"\*\*(\d+) of 200\*\*", guide)
    assert figures, "the guide states the 4-partition figure as **N of 200**"
    assert {int(f) for f in figures} == {differing(4)}
    assert "`MO-1000000`" in guide and "`MO-1000199`" in guide


def test_the_guides_table_is_measured(guide):
    rows = {int(p): int(n) for p, n in re.findall(r"^\| (\d+) \| (\d+) of 200 \|$", guide, re.MULTILINE)}
    assert 4 in rows and len(rows) >= 3, rows
    assert rows == {p: differing(p) for p in rows}


def test_the_guide_names_the_default_namespace_and_dedup_window(guide, default_topics):
    assert f"`{default_topics.custody_events}`" in guide
    assert f"`{default_topics.dead_letters}`" in guide
    days = f"{default_topics.dedup_days:g}"
    assert f"(default {days})" in guide and f"within {days} days" in guide


# ---- the AsyncAPI document ---------------------------------------------------------------


def test_asyncapi_is_3_0_and_names_every_topic(asyncapi, default_topics):
    assert str(asyncapi["asyncapi"]).startswith("3.0")
    addresses = {ch["address"]: ch for ch in asyncapi["channels"].values()}
    specs = default_topics.specs()
    assert {s.name for s in specs} == set(addresses)
    for spec in specs:
        kafka = addresses[spec.name]["bindings"]["kafka"]
        assert kafka["partitions"] == spec.partitions, spec.name
        policy = spec.config.get("cleanup.policy", "delete")
        assert kafka["topicConfiguration"]["cleanup.policy"] == policy.split(","), spec.name
        if "retention.ms" in spec.config:
            assert str(kafka["topicConfiguration"]["retention.ms"]) == spec.config["retention.ms"]


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_asyncapi_references_resolve(asyncapi):
    files = published_schemas()
    refs = list(_refs(asyncapi))
    for ref in refs:
        if ref.startswith("#/"):
            node = asyncapi
            for part in ref[2:].split("/"):
                node = node[part]
        else:
            assert ref.startswith("schemas/") and ref.removeprefix("schemas/") in files, ref
    custody = asyncapi["components"]["messages"]["CustodyEvent"]
    assert custody["payload"]["schema"]["$ref"] == "schemas/custody-event.schema.json"


def test_asyncapi_stored_registration_lists_the_models_required_fields(asyncapi):
    payload = asyncapi["components"]["messages"]["StoredRegistration"]["payload"]
    model = StoredRegistration.model_json_schema()
    assert set(payload["required"]) == set(model["required"])
    assert set(payload["properties"]) == set(model["properties"])
