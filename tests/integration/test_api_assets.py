"""Admin routes for the asset registry: sites, lines, machine types (versioned) and machines."""

from __future__ import annotations

from typing import Any

from tests.fixtures.app import ApiEnv

PUMP: dict[str, Any] = {
    "id": "api-pump",
    "name": "Pump (API)",
    "failure_modes": ["bearing"],
    "costs": {"currency": "EUR", "repair_cost": 5000, "downtime_cost_per_h": 300},
    "sensors": [{"name": "vibration", "unit": "mm/s", "min": 0, "max": 50}],
}


def test_admin_writes_are_versioned_and_audited(api_env: ApiEnv) -> None:
    c, h = api_env.client, api_env.h
    assert c.post("/v1/sites", json={"id": "plant-z", "name": "Z"}, headers=h()).status_code == 201
    r = c.post("/v1/lines", json={"id": "z-l1", "site": "plant-z"}, headers=h())
    assert r.status_code == 201 and r.json()["created"] == {"lines": ["z-l1"]}
    assert c.put("/v1/machine-types/api-pump", json=PUMP, headers=h()).status_code == 201
    again = c.put("/v1/machine-types/api-pump", json=PUMP, headers=h())
    assert again.status_code == 200 and again.json()["unchanged"] == {"machine_types": 1}
    wider = {**PUMP, "sensors": [{"name": "vibration", "unit": "mm/s", "min": 0, "max": 70}]}
    r = c.put("/v1/machine-types/api-pump", json=wider, headers=h())
    assert r.status_code == 200 and r.json()["updated"] == {"machine_types": ["api-pump"]}
    body = {"id": "z-pump-1", "site": "plant-z", "line": "z-l1", "type": "api-pump"}
    assert c.post("/v1/machines", json=body, headers=h()).status_code == 201
    detail = c.get("/v1/machine-types/api-pump", headers=h("viewer")).json()
    assert [v["sensors"][0]["max"] for v in detail["versions"]] == [50.0, 70.0]
    assert detail["machines"] == 1 and detail["currency"] == "EUR"
    sites = {s["id"]: s for s in c.get("/v1/sites", headers=h("viewer")).json()}
    assert sites["plant-z"]["lines"] == [{"id": "z-l1", "name": "z-l1"}]
    # the existing machine list still answers viewers, now with the new machine
    listed = {m["id"] for m in c.get("/v1/machines", headers=h("viewer")).json()}
    assert "z-pump-1" in listed
    with api_env.conn() as conn:
        actors = conn.execute(
            "select distinct actor from audit_log where action = 'assets.apply'"
        ).fetchall()
    assert actors == [("test-admin",)]


def test_only_admins_write_and_bad_bodies_are_4xx(api_env: ApiEnv) -> None:
    c, h = api_env.client, api_env.h
    for role in ("viewer", "operator", "maintenance"):
        r = c.put("/v1/machine-types/api-pump", json=PUMP, headers=h(role))
        assert r.status_code == 403
        assert c.post("/v1/sites", json={"id": "x"}, headers=h(role)).status_code == 403
    bad = {**PUMP, "sensors": [{"name": "v", "unit": "mm/s", "min": 9, "max": 1}]}
    r = c.put("/v1/machine-types/api-pump", json=bad, headers=h())
    assert r.status_code == 422 and "min (9) must be below max (1)" in r.text
    r = c.put("/v1/machine-types/other", json=PUMP, headers=h())
    assert r.status_code == 422
    r = c.post("/v1/machines", json={"id": "m", "site": "nowhere", "type": "api-pump"}, headers=h())
    assert r.status_code == 422 and "unknown site 'nowhere'" in r.json()["detail"]
    assert c.get("/v1/machine-types/none", headers=h()).status_code == 404
