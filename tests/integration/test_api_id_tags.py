"""Id-tag management over REST, and how the tag table answers the charger's Authorize and StartTransaction."""

from __future__ import annotations


import pytest

from gateway import clock
from tests.conftest import make_config, started
from tests.helpers import ISO, assert_error, BOOT, charger




def fields(tag: dict) -> tuple:
    return tag["idTag"], tag["status"], tag["expiryDate"], tag["parentIdTag"], tag["effectiveStatus"]


async def test_create_returns_201_with_the_stored_tag(gateway):
    async with gateway.http() as http:
        r = await http.post("/api/id-tags", json={"idTag": "TAG1", "status": "Blocked",
                                                  "expiryDate": "2030-01-01T00:00:00+02:00", "parentIdTag": "GROUP"})
        assert r.status_code == 201, r.text
        tag = r.json()
        # the expiry is kept in UTC: 00:00 at +02:00 is 22:00 the day before
        assert fields(tag) == ("TAG1", "Blocked", "2029-12-31T22:00:00.000Z", "GROUP", "Blocked")
        assert ISO.match(tag["createdAt"]) and tag["createdAt"] == tag["updatedAt"]
        assert (await http.get("/api/id-tags/TAG1")).json() == tag

        r = await http.post("/api/id-tags", json={"idTag": "X" * 20})  # the longest IdToken
        assert r.status_code == 201
        assert fields(r.json()) == ("X" * 20, "Accepted", None, None, "Accepted")


async def test_duplicate_is_a_409_and_keeps_the_first(gateway):
    async with gateway.http() as http:
        assert (await http.post("/api/id-tags", json={"idTag": "TAG1"})).status_code == 201
        body = assert_error(await http.post("/api/id-tags", json={"idTag": "TAG1", "status": "Blocked"}),
                            409, "conflict")
        assert "TAG1" in body["message"]
        assert (await http.get("/api/id-tags/TAG1")).json()["status"] == "Accepted"


BAD_BODIES = [
    ({"idTag": "TAG1", "status": "Maybe"}, "status"),
    ({"idTag": "TAG1", "status": 1}, "status"),
    ({"idTag": "X" * 21}, "idTag"),
    ({"idTag": ""}, "idTag"),
    ({"idTag": 12345}, "idTag"),
    ({"status": "Accepted"}, "idTag"),
    ({"idTag": "TAG1", "expiryDate": "tomorrow"}, "expiryDate"),
    ({"idTag": "TAG1", "expiryDate": "2030-02-30T00:00:00Z"}, "expiryDate"),
    ({"idTag": "TAG1", "expiryDate": 1893456000}, "expiryDate"),
    ({"idTag": "TAG1", "parentIdTag": "P" * 21}, "parentIdTag"),
]


@pytest.mark.parametrize("body,name", BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
async def test_bad_body_is_a_400_and_nothing_is_stored(gateway, body, name):
    async with gateway.http() as http:
        error = assert_error(await http.post("/api/id-tags", json=body), 400, "bad_request")
        assert name in error["message"]
        assert (await http.get("/api/id-tags")).json()["total"] == 0


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '"TAG1"', ""])
async def test_body_that_is_not_a_json_object_is_a_400(gateway, content):
    async with gateway.http() as http:
        r = await http.post("/api/id-tags", content=content, headers={"content-type": "application/json"})
        assert "JSON object" in assert_error(r, 400, "bad_request")["message"]
        r = await http.put("/api/id-tags/TAG1", content=content, headers={"content-type": "application/json"})
        assert_error(r, 400, "bad_request")
        assert (await http.get("/api/id-tags")).json()["total"] == 0


async def test_list_pages_in_tag_order_and_filters_by_status(gateway):
    tags = {"E5": "Accepted", "A1": "Blocked", "D4": "Accepted", "B2": "Invalid", "C3": "Blocked"}
    async with gateway.http() as http:
        for tag, state in tags.items():
            assert (await http.post("/api/id-tags", json={"idTag": tag, "status": state})).status_code == 201

        async def page(**params):
            r = await http.get("/api/id-tags", params={k: str(v) for k, v in params.items()})
            assert r.status_code == 200
            body = r.json()
            return body["total"], body["page"], body["size"], [t["idTag"] for t in body["records"]]

        assert await page(size=2) == (5, 1, 2, ["A1", "B2"])
        assert await page(size=2, page=2) == (5, 2, 2, ["C3", "D4"])
        assert await page(size=2, page=3) == (5, 3, 2, ["E5"])
        assert await page(status="Blocked") == (2, 1, 50, ["A1", "C3"])
        assert await page(status="Accepted", size=1, page=2) == (2, 2, 1, ["E5"])
        assert await page(status="Expired") == (0, 1, 50, [])
        body = assert_error(await http.get("/api/id-tags", params={"status": "Bogus"}), 400, "bad_request")
        assert "status" in body["message"]


async def test_get_unknown_is_404(gateway):
    async with gateway.http() as http:
        body = assert_error(await http.get("/api/id-tags/NOBODY"), 404, "not_found")
    assert "NOBODY" in body["message"]


async def test_put_replaces_and_patch_changes_only_what_it_names(gateway):
    async with gateway.http() as http:
        created = (await http.post("/api/id-tags", json={
            "idTag": "TAG1", "status": "Blocked", "expiryDate": "2030-01-01T00:00:00Z", "parentIdTag": "GROUP"})).json()

        r = await http.patch("/api/id-tags/TAG1", json={"status": "Accepted"})
        assert r.status_code == 200
        assert fields(r.json()) == ("TAG1", "Accepted", "2030-01-01T00:00:00.000Z", "GROUP", "Accepted")
        r = await http.patch("/api/id-tags/TAG1", json={"parentIdTag": "OTHER"})
        assert fields(r.json()) == ("TAG1", "Accepted", "2030-01-01T00:00:00.000Z", "OTHER", "Accepted")

        r = await http.put("/api/id-tags/TAG1", json={"status": "Invalid"})  # what is not given is gone
        assert r.status_code == 200
        assert fields(r.json()) == ("TAG1", "Invalid", None, None, "Invalid")
        assert r.json()["createdAt"] == created["createdAt"]
        assert (await http.get("/api/id-tags/TAG1")).json() == r.json()

        r = await http.put("/api/id-tags/NEW1", json={"expiryDate": "2031-06-01T12:00:00Z"})  # PUT creates
        assert r.status_code == 201
        assert fields(r.json()) == ("NEW1", "Accepted", "2031-06-01T12:00:00.000Z", None, "Accepted")

        body = assert_error(await http.patch("/api/id-tags/MISSING", json={"status": "Blocked"}), 404, "not_found")
        assert "MISSING" in body["message"]
        assert_error(await http.get("/api/id-tags/MISSING"), 404, "not_found")
        assert_error(await http.patch("/api/id-tags/TAG1", json={"status": "Nope"}), 400, "bad_request")
        assert_error(await http.put("/api/id-tags/" + "Y" * 21, json={}), 400, "bad_request")
        assert (await http.get("/api/id-tags/TAG1")).json()["status"] == "Invalid"


async def test_block_unblock_expire_and_delete(gateway):
    async with gateway.http() as http:
        await http.post("/api/id-tags", json={"idTag": "TAG1", "parentIdTag": "GROUP"})

        r = await http.post("/api/id-tags/TAG1/block")
        assert r.status_code == 200 and fields(r.json()) == ("TAG1", "Blocked", None, "GROUP", "Blocked")
        r = await http.post("/api/id-tags/TAG1/unblock")
        assert r.status_code == 200 and fields(r.json()) == ("TAG1", "Accepted", None, "GROUP", "Accepted")

        before = clock.iso()
        r = await http.post("/api/id-tags/TAG1/expire")
        assert r.status_code == 200
        tag = r.json()
        assert (tag["status"], tag["effectiveStatus"], tag["parentIdTag"]) == ("Accepted", "Expired", "GROUP")
        assert before <= tag["expiryDate"] <= clock.iso()
        assert (await http.get("/api/id-tags/TAG1")).json()["effectiveStatus"] == "Expired"

        for action in ("block", "unblock", "expire"):
            assert_error(await http.post(f"/api/id-tags/MISSING/{action}"), 404, "not_found")

        r = await http.delete("/api/id-tags/TAG1")
        assert r.status_code == 204 and r.content == b""
        assert_error(await http.get("/api/id-tags/TAG1"), 404, "not_found")
        assert_error(await http.delete("/api/id-tags/TAG1"), 404, "not_found")


async def authorize(cp, tag: str) -> dict:
    return (await cp.result("Authorize", {"idTag": tag}))["idTagInfo"]


async def test_the_tag_table_answers_the_chargers_authorize(gateway):
    async with charger(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await cp.result("BootNotification", BOOT)
        await http.post("/api/id-tags", json={"idTag": "TAG1", "parentIdTag": "GROUP",
                                              "expiryDate": "2031-01-01T00:00:00Z"})
        assert await authorize(cp, "TAG1") == {"status": "Accepted", "parentIdTag": "GROUP",
                                               "expiryDate": "2031-01-01T00:00:00.000Z"}

        await http.post("/api/id-tags/TAG1/block")
        assert (await authorize(cp, "TAG1"))["status"] == "Blocked"
        start = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                                                     "timestamp": clock.iso()})
        assert start["idTagInfo"]["status"] == "Blocked"

        await http.post("/api/id-tags/TAG1/unblock")
        assert (await authorize(cp, "TAG1"))["status"] == "Accepted"
        await http.patch("/api/id-tags/TAG1", json={"status": "ConcurrentTx"})
        assert (await authorize(cp, "TAG1"))["status"] == "ConcurrentTx"
        await http.put("/api/id-tags/TAG1", json={})
        assert await authorize(cp, "TAG1") == {"status": "Accepted"}

        expired = (await http.post("/api/id-tags/TAG1/expire")).json()
        assert await authorize(cp, "TAG1") == {"status": "Expired", "expiryDate": expired["expiryDate"]}

        # A deleted tag is unknown; this gateway accepts unknown tags (the default policy).
        assert (await http.delete("/api/id-tags/TAG1")).status_code == 204
        assert await authorize(cp, "TAG1") == {"status": "Accepted"}


async def test_a_deleted_tag_is_invalid_when_unknown_tags_are_rejected(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_id_tags="reject")) as gw, \
            charger(gw.ocpp_port, "CP1") as cp, gw.http() as http:
        await cp.result("BootNotification", BOOT)
        await http.post("/api/id-tags", json={"idTag": "TAG1"})
        assert await authorize(cp, "TAG1") == {"status": "Accepted"}
        await http.delete("/api/id-tags/TAG1")
        assert await authorize(cp, "TAG1") == {"status": "Invalid"}
