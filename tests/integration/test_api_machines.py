"""Machines, downsampled readings, predictions, models (promote/rollback) and ROI through the API."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

from forewarn.storage.readings import insert_readings
from tests.factories import T0, make_telemetry
from tests.fixtures.app import ApiEnv


def test_readings_are_averaged_per_bucket(api_env: ApiEnv) -> None:
    env = api_env
    rows = [
        make_telemetry(
            seq=s,
            values={"vibration_rms": float(s), "bearing_temp": 40.0, "flow": 1.0, "pressure": 2.0},
        )
        for s in range(1, 121)  # one reading per second for two minutes
    ]
    with psycopg.connect(
        env.url
    ) as conn:  # one transaction: insert_readings stages rows until commit
        assert insert_readings(conn, rows) == 120
    r = env.client.get(
        "/v1/machines/s1-pump-000/readings",
        params={
            "start": T0.isoformat(),
            "end": (T0 + timedelta(minutes=5)).isoformat(),
            "bucket_s": 60,
            "sensor": ["vibration_rms"],
        },
        headers=env.h("viewer"),
    )
    assert r.status_code == 200
    pts = r.json()["points"]
    # buckets [0, 60) and [60, 120) and [120, 180) seconds after T0: seqs 1..59, 60..119, 120
    assert [(p["count"], p["avg"], p["min"], p["max"]) for p in pts] == [
        (59, 30.0, 1.0, 59.0),
        (60, 89.5, 60.0, 119.0),
        (1, 120.0, 120.0, 120.0),
    ]
    assert {p["sensor"] for p in pts} == {"vibration_rms"}
    detail = env.client.get("/v1/machines/s1-pump-000", headers=env.h("viewer")).json()
    assert detail["latest_reading"]["values"]["vibration_rms"] == 120.0
    assert [s["name"] for s in detail["sensors"]][:2] == ["vibration_rms", "bearing_temp"]


def test_promote_and_rollback_move_the_alias_with_history(api_env: ApiEnv) -> None:
    env = api_env
    with env.conn() as conn:
        for v in (1, 2):
            conn.execute(
                "insert into model_versions (name, version, artifact, artifact_sha256, features, feature_hash, metrics)"
                " values ('failure', %s, '\\x00', 'sha', '[]', 'fh', %s)",
                (v, Jsonb({"auc": 0.9 + v / 100})),
            )
    h = env.h("admin")
    assert (
        env.client.post(
            "/v1/models/failure/promote", json={"version": 1}, headers=env.h("operator")
        ).status_code
        == 403
    )
    assert (
        env.client.post("/v1/models/failure/promote", json={"version": 1}, headers=h).json()[
            "previous_version_id"
        ]
        is None
    )
    moved = env.client.post("/v1/models/failure/promote", json={"version": 2}, headers=h).json()
    assert moved["version_id"] != moved["previous_version_id"]
    listed = {
        m["version"]: m["aliases"]
        for m in env.client.get("/v1/models", headers=env.h("viewer")).json()
    }
    assert listed == {2: ["champion"], 1: []}
    back = env.client.post("/v1/models/failure/rollback", json={}, headers=h).json()
    assert back["version_id"] == moved["previous_version_id"]
    listed = {
        m["version"]: m["aliases"]
        for m in env.client.get("/v1/models", headers=env.h("viewer")).json()
    }
    assert listed == {2: [], 1: ["champion"]}
    assert (
        env.client.post("/v1/models/failure/promote", json={"version": 9}, headers=h).status_code
        == 404
    )
    with env.conn() as conn:
        assert conn.execute("select count(*) from model_alias_history").fetchone() == (3,)
        assert conn.execute(
            "select count(*) from audit_log where action = 'model.champion.move'"
        ).fetchone() == (3,)
