"""/api/station against a real gateway: every route, its checks, its 409s, paging, nearby, roles."""

from __future__ import annotations

from gateway import clock
from gateway.http.station_api import haversine_km
from tests.conftest import started
from tests.helpers import assert_error
from tests.integration.test_auth import config_with, viewer_and_operator

# Places (degrees north, east) and their great-circle distances on the mean Earth radius 6371.0088 km, worked
# out apart from the gateway: as the angle between the two points' unit vectors, atan2(|a x b|, a . b).
PEOPLES_SQUARE = (31.2304, 121.4737)  # Shanghai, People's Square
HONGQIAO = (31.1979, 121.3363)  # Shanghai Hongqiao airport: 13.557 km from People's Square
PUDONG = (31.1443, 121.8083)  # Shanghai Pudong airport: 33.238 km
THE_BUND = (31.2397, 121.4998)  # the Bund: 2.688 km
TIANANMEN = (39.9087, 116.3975)  # Beijing, Tiananmen Square: 1068.140 km


def ok(r, status: int = 200):
    """The EVCS envelope of a success; its data."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == status and body["path"] == r.request.url.path
    return body["data"]


def refused(r, status: int, error: str) -> dict:
    body = assert_error(r, status, error)
    assert body["code"] == status and body["data"] is None  # the EVCS envelope, errors too
    return body


def station(code: str, name: str | None = None, at: tuple[float, float] | None = None, **more) -> dict:
    body = {"stationCode": code, "stationName": f"Station {code}" if name is None else name, **more}
    if at:
        body["latitude"], body["longitude"] = at
    return body


async def place(gw, cp_id: str, station_id: int | None) -> None:
    """A registry charger placed at the station (as POST /api/charger would)."""
    def insert(conn):
        conn.execute("INSERT INTO charger_registry (charge_point_id, station_id, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?)", (cp_id, station_id, clock.iso(), clock.iso()))
    await gw.store.db.run(insert)


def test_haversine_matches_distances_worked_out_apart():
    for there, km in ((HONGQIAO, 13.557), (PUDONG, 33.238), (THE_BUND, 2.688), (TIANANMEN, 1068.140)):
        assert round(haversine_km(*PEOPLES_SQUARE, *there), 3) == km
        assert round(haversine_km(*there, *PEOPLES_SQUARE), 3) == km  # either way round
    assert haversine_km(*HONGQIAO, *HONGQIAO) == 0
    assert round(haversine_km(0, 0, 0, 180), 3) == 20015.114  # half the circumference: pi * 6371.0088


async def test_create_read_change_and_delete(gateway):
    async with gateway.http() as http:
        made = ok(await http.post("/api/station", json=station(
            "SH-001", "People's Square", PEOPLES_SQUARE, address="120 Renmin Avenue", city="Shanghai",
            openingHours="00:00-24:00")), 201)
        assert made["stationCode"] == "SH-001" and made["stationName"] == "People's Square"
        assert made["address"] == "120 Renmin Avenue" and made["city"] == "Shanghai"
        assert (made["latitude"], made["longitude"]) == PEOPLES_SQUARE
        assert made["openingHours"] == "00:00-24:00"
        assert made["status"] == 1 and made["chargerCount"] == 0 and made["tenantId"] == 1
        assert made["createdAt"] == made["updatedAt"]
        sid = made["stationId"]
        assert ok(await http.get(f"/api/station/{sid}")) == made

        changed = ok(await http.put(f"/api/station/{sid}", json={"stationName": "Renmin Square", "city": None}))
        assert changed["stationName"] == "Renmin Square" and changed["city"] is None
        assert changed["stationCode"] == "SH-001" and changed["address"] == "120 Renmin Avenue"  # kept
        assert changed["latitude"] == PEOPLES_SQUARE[0]

        assert ok(await http.put(f"/api/station/{sid}/status", params={"status": 0}))["status"] == 0
        assert ok(await http.put(f"/api/station/{sid}/status", json={"status": 1}))["status"] == 1
        assert ok(await http.put(f"/api/station/{sid}", json={"status": 0}))["status"] == 0

        assert ok(await http.delete(f"/api/station/{sid}")) is None
        refused(await http.get(f"/api/station/{sid}"), 404, "not_found")
        refused(await http.delete(f"/api/station/{sid}"), 404, "not_found")
        refused(await http.put(f"/api/station/{sid}", json={"stationName": "x"}), 404, "not_found")
        refused(await http.put(f"/api/station/{sid}/status", params={"status": 1}), 404, "not_found")


async def test_bad_bodies_are_refused_naming_the_field(gateway):
    async with gateway.http() as http:
        cases = [
            ({"stationName": "No code"}, "stationCode"),
            (station(""), "stationCode"),
            (station("x" * 33), "stationCode"),
            (station("has space"), "stationCode"),
            (station("ok", ""), "stationName"),
            (station("ok", "n" * 101), "stationName"),
            ({"stationCode": "ok"}, "stationName is required"),
            (station("ok", color="red", size=3), "unknown fields color, size"),
            (station("ok", latitude=31.2), "latitude and longitude go together"),
            (station("ok", latitude=None, longitude=121.4), "latitude and longitude go together"),
            (station("ok", at=(90.5, 0)), "latitude must be a number from -90 to 90"),
            (station("ok", at=(0, -180.01)), "longitude must be a number from -180 to 180"),
            (station("ok", at=(True, 0)), "latitude"),
            (station("ok", at=("31", "121")), "latitude"),
            (station("ok", status=2), "status must be 0 (disabled) or 1 (enabled)"),
            (station("ok", address=5), "address must be a string"),
        ]
        for body, named in cases:
            assert named in refused(await http.post("/api/station", json=body), 400, "bad_request")["message"], body
        assert "JSON object" in refused(await http.post("/api/station", json=[1]), 400, "bad_request")["message"]
        r = await http.post("/api/station", content=b'{"stationCode": "nan", "stationName": "n", '
                                                    b'"latitude": NaN, "longitude": 0}')
        assert "latitude" in refused(r, 400, "bad_request")["message"]
        assert ok(await http.get("/api/station/count")) == {"total": 0, "enabled": 0, "disabled": 0}  # none made
        assert ok(await http.post("/api/station", json=station("ok", at=(-90, 180))), 201)["latitude"] == -90


async def test_a_taken_code_is_a_409_naming_it_and_check_code_says_so(gateway):
    async with gateway.http() as http:
        first = ok(await http.post("/api/station", json=station("SH-001")), 201)
        second = ok(await http.post("/api/station", json=station("SH-002")), 201)
        body = refused(await http.post("/api/station", json=station("SH-001", "Another")), 409, "conflict")
        assert "SH-001" in body["message"]
        body = refused(await http.put(f"/api/station/{second['stationId']}", json={"stationCode": "SH-001"}),
                       409, "conflict")
        assert "SH-001" in body["message"]
        assert ok(await http.get(f"/api/station/{second['stationId']}"))["stationCode"] == "SH-002"  # unchanged
        # its own code again is no clash
        assert ok(await http.put(f"/api/station/{first['stationId']}", json={"stationCode": "SH-001"}))

        check = "/api/station/check-code"
        assert ok(await http.get(check, params={"stationCode": "SH-001"})) == {"stationCode": "SH-001",
                                                                              "available": False}
        assert ok(await http.get(check, params={"stationCode": "SH-001", "excludeId": first["stationId"]}))[
            "available"] is True
        assert ok(await http.get(check, params={"stationCode": "SH-001", "excludeId": second["stationId"]}))[
            "available"] is False
        assert ok(await http.get(check, params={"stationCode": "SH-003"}))["available"] is True
        refused(await http.get(check), 400, "bad_request")
        refused(await http.get(check, params={"stationCode": "a b"}), 400, "bad_request")
        refused(await http.get(check, params={"stationCode": "x", "excludeId": "one"}), 400, "bad_request")


async def test_a_station_with_chargers_placed_is_not_deleted(gateway):
    async with gateway.http() as http:
        sid = ok(await http.post("/api/station", json=station("SH-001")), 201)["stationId"]
        other = ok(await http.post("/api/station", json=station("SH-002")), 201)["stationId"]
        await place(gateway, "CP-B", sid)
        await place(gateway, "CP-A", sid)
        await place(gateway, "CP-C", other)
        assert ok(await http.get(f"/api/station/{sid}"))["chargerCount"] == 2
        body = refused(await http.delete(f"/api/station/{sid}"), 409, "conflict")
        assert "CP-A, CP-B" in body["message"] and body["chargePointIds"] == ["CP-A", "CP-B"]
        assert ok(await http.get(f"/api/station/{sid}"))["chargerCount"] == 2  # still there

        def unplace(conn):
            conn.execute("UPDATE charger_registry SET station_id = NULL WHERE station_id = ?", (sid,))
        await gateway.store.db.run(unplace)
        assert ok(await http.delete(f"/api/station/{sid}")) is None
        assert ok(await http.get(f"/api/station/{other}"))["chargerCount"] == 1


async def test_list_filters_pages_and_counts(gateway):
    async with gateway.http() as http:
        made = []
        for i, (city, name, address) in enumerate([
                ("Shanghai", "People's Square", "120 Renmin Avenue"), ("Shanghai", "Hongqiao Hub", "Shenhong Road"),
                ("Beijing", "Tiananmen", "East Chang'an Avenue"), ("Beijing", "Sanlitun 100%", None),
                ("Shenzhen", "Futian", "Renmin South Road")]):
            made.append(ok(await http.post("/api/station", json=station(f"ST-{i}", name, city=city,
                                                                         address=address)), 201))
        ok(await http.put(f"/api/station/{made[1]['stationId']}/status", params={"status": 0}))

        def codes(data):
            return [s["stationCode"] for s in data["records"]]

        every = ok(await http.get("/api/station"))
        assert codes(every) == ["ST-0", "ST-1", "ST-2", "ST-3", "ST-4"] and every["total"] == 5
        for path in ("/api/station/page", "/api/station/list"):
            assert ok(await http.get(path)) == every
        first = ok(await http.get("/api/station", params={"page": 1, "size": 2}))
        assert (codes(first), first["total"], first["page"], first["size"]) == (["ST-0", "ST-1"], 5, 1, 2)
        assert codes(ok(await http.get("/api/station", params={"page": 3, "size": 2}))) == ["ST-4"]
        assert codes(ok(await http.get("/api/station", params={"page": 4, "size": 2}))) == []
        assert codes(ok(await http.get("/api/station", params={"city": "Beijing"}))) == ["ST-2", "ST-3"]
        assert codes(ok(await http.get("/api/station", params={"status": 0}))) == ["ST-1"]
        shanghai_on = ok(await http.get("/api/station", params={"status": 1, "city": "Shanghai"}))
        assert codes(shanghai_on) == ["ST-0"] and shanghai_on["total"] == 1
        assert codes(ok(await http.get("/api/station", params={"q": "renmin"}))) == ["ST-0", "ST-4"]  # address
        assert codes(ok(await http.get("/api/station", params={"q": "HUB"}))) == ["ST-1"]  # name
        assert codes(ok(await http.get("/api/station", params={"q": "st-3"}))) == ["ST-3"]  # code
        assert codes(ok(await http.get("/api/station", params={"q": "100%"}))) == ["ST-3"]  # % is a character
        assert codes(ok(await http.get("/api/station", params={"q": "%"}))) == ["ST-3"]
        for bad in ({"page": 0}, {"size": 0}, {"size": "ten"}, {"status": 2}, {"status": "on"}):
            refused(await http.get("/api/station", params=bad), 400, "bad_request")

        assert ok(await http.get("/api/station/count")) == {"total": 5, "enabled": 4, "disabled": 1}
        assert ok(await http.get("/api/station/count", params={"status": 0})) == {"total": 1, "enabled": 0,
                                                                                  "disabled": 1}
        assert ok(await http.get("/api/station/count", params={"status": 1})) == {"total": 4, "enabled": 4,
                                                                                  "disabled": 0}
        refused(await http.get("/api/station/count", params={"status": 5}), 400, "bad_request")


async def test_nearby_measures_great_circle_distances(gateway):
    async with gateway.http() as http:
        for code, at in (("BUND", THE_BUND), ("SHA", HONGQIAO), ("PVG", PUDONG), ("PEK", TIANANMEN)):
            ok(await http.post("/api/station", json=station(code, at=at)), 201)
        ok(await http.post("/api/station", json=station("NOWHERE")), 201)  # no coordinates: never near
        off = ok(await http.post("/api/station", json=station("OFF", at=PEOPLES_SQUARE, status=0)), 201)

        def near(**query):
            return http.get("/api/station/nearby", params={"latitude": PEOPLES_SQUARE[0],
                                                           "longitude": PEOPLES_SQUARE[1], **query})

        found = ok(await near())  # radius 10 km by default
        assert [(s["stationCode"], s["distanceKm"]) for s in found] == [("BUND", 2.688)]
        assert found[0]["latitude"] == THE_BUND[0] and found[0]["status"] == 1
        found = ok(await near(radius=50))
        assert [(s["stationCode"], s["distanceKm"]) for s in found] == [
            ("BUND", 2.688), ("SHA", 13.557), ("PVG", 33.238)]
        found = ok(await near(radius=2000))
        assert [(s["stationCode"], s["distanceKm"]) for s in found] == [
            ("BUND", 2.688), ("SHA", 13.557), ("PVG", 33.238), ("PEK", 1068.14)]
        assert [s["stationCode"] for s in ok(await near(radius=2000, limit=2))] == ["BUND", "SHA"]
        assert ok(await near(radius=13.556)) == ok(await near())  # Hongqiao lies just beyond
        assert [s["stationCode"] for s in ok(await near(radius=13.557))] == ["BUND", "SHA"]
        # From Hongqiao itself: its own station first, at 0.
        found = ok(await http.get("/api/station/nearby", params={"latitude": HONGQIAO[0], "longitude": HONGQIAO[1]}))
        assert [(s["stationCode"], s["distanceKm"]) for s in found] == [("SHA", 0.0)]

        ok(await http.put(f"/api/station/{off['stationId']}/status", params={"status": 1}))
        assert ok(await near(limit=1))[0]["stationCode"] == "OFF"  # enabled again: now the nearest
        assert ok(await near(limit=1))[0]["distanceKm"] == 0.0

        for query, named in (({"latitude": None}, "latitude"), ({"longitude": None}, "longitude"),
                             ({"latitude": "NaN"}, "latitude"), ({"latitude": "90.1"}, "latitude"),
                             ({"longitude": "-180.5"}, "longitude"), ({"latitude": "north"}, "latitude"),
                             ({"longitude": "inf"}, "longitude"), ({"radius": 0}, "radius"),
                             ({"radius": -1}, "radius"), ({"radius": 20000.5}, "radius"),
                             ({"radius": "nan"}, "radius"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"),
                             ({"limit": "many"}, "limit")):
            params = {"latitude": PEOPLES_SQUARE[0], "longitude": PEOPLES_SQUARE[1], **query}
            params = {k: v for k, v in params.items() if v is not None}
            body = refused(await http.get("/api/station/nearby", params=params), 400, "bad_request")
            assert named in body["message"], (query, body)
        assert len(ok(await near(radius=20000, limit=500))) == 5


async def test_unknown_and_malformed_ids(gateway):
    async with gateway.http() as http:
        refused(await http.get("/api/station/999"), 404, "not_found")
        refused(await http.get("/api/station/99999999999999999999"), 404, "not_found")
        refused(await http.put("/api/station/1/status", params={"status": "yes"}), 400, "bad_request")
        refused(await http.put("/api/station/1/status"), 400, "bad_request")
        refused(await http.patch("/api/station/1", json={}), 405, "method_not_allowed")


async def test_a_viewer_reads_an_operator_writes(nursery, tmp_path):
    config = config_with(tmp_path, admin_password="s3cret-pass")
    async with started(nursery, config) as gw, gw.http() as http:
        viewer, operator = await viewer_and_operator(gw)
        refused(await http.get("/api/station"), 401, "unauthorized")
        refused(await http.post("/api/station", json=station("V-1"), headers=viewer), 403, "forbidden")
        sid = ok(await http.post("/api/station", json=station("O-1"), headers=operator), 201)["stationId"]
        assert ok(await http.get("/api/station", headers=viewer))["total"] == 1
        assert ok(await http.get(f"/api/station/{sid}", headers=viewer))["stationCode"] == "O-1"
        assert ok(await http.get("/api/station/count", headers=viewer))["total"] == 1
        for method, path, kwargs in (("PUT", f"/api/station/{sid}", {"json": {"stationName": "x"}}),
                                     ("PUT", f"/api/station/{sid}/status", {"params": {"status": 0}}),
                                     ("DELETE", f"/api/station/{sid}", {})):
            refused(await http.request(method, path, headers=viewer, **kwargs), 403, "forbidden")
        assert ok(await http.get(f"/api/station/{sid}", headers=viewer))["stationName"] == "Station O-1"
        assert ok(await http.delete(f"/api/station/{sid}", headers=operator)) is None


async def test_errors_are_in_the_evcs_envelope_and_the_records_routes_keep_theirs(gateway):
    async with gateway.http() as http:
        for path in ("/api/station/999", "/api/station/nope"):
            refused(await http.get(path), 404, "not_found")
        refused(await http.delete("/api/station"), 405, "method_not_allowed")
        plain = assert_error(await http.get("/api/chargers/never-seen"), 404, "not_found")
        assert "code" not in plain and "data" not in plain  # /api/chargers is section 4's, not the EVCS family
