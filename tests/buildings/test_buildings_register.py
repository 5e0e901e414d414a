"""The buildings register (issue 14, point 2): `crm buildings import FILE.csv` (one transaction per
file, per-row refusals with line numbers, idempotent re-import) and GET /api/v1/buildings?q=."""
from __future__ import annotations

import pytest

FIAS = "0c5b2444-70a0-4932-980c-b4dc0d3f02b5"

CSV = (
    "address,fias_id,entrances,apartments\n"
    f"\"г. Москва, ул. Ленина, д. 5\",{FIAS},4,120\n"          # line 2: added
    "\"г. Москва, ул. Ленина, д. 5а\",,2,40\n"                 # line 3: added
    ",,1,10\n"                                                # line 4: no address
    "\"г. Москва, ул. Ленина, д. 15\",,два,10\n"              # line 5: entrances not an integer
    "\"г. Москва, ул. Ленина, д. 17\",not-a-guid,1,10\n"      # line 6: bad fias_id
    "\"г. Москва, ул. Ленина, д. 19\",,1,-3\n"                # line 7: apartments not an integer
    "\"Москва, улица Ленина, дом 5\",,,\n"                    # line 8: same building as line 2
    "\"пр-т Мира, 3 стр 1\",,,\n"                             # line 9: added, counts empty
)


def _rows():
    from crm.buildings.services import search

    return {b.address_key: (b.address, b.fias_id, b.entrances, b.apartments) for b in search("москва")
            + search("мира")}


def _write(tmp_path, text: str | bytes, name="b.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def test_import_refuses_bad_rows_with_their_lines_and_is_idempotent(ctx, runner, tmp_path):
    path = _write(tmp_path, CSV)
    res = runner("buildings", "import", path)
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert first.startswith("added 3, updated 1, refused 4"), res.output
    for line, word in ((4, "адрес"), (5, "entrances"), (6, "fias_id"), (7, "apartments")):
        assert any(l.strip().startswith(f"line {line}:") and word in l for l in res.output.splitlines()), res.output
    rows = _rows()
    assert len(rows) == 3
    # line 8 matched line 2's building: the address as last written, the counts kept (empty cells)
    assert rows["москва ул ленина 5"] == ("Москва, улица Ленина, дом 5", FIAS, 4, 120)
    assert rows["москва ул ленина 5а"][2:] == (2, 40)
    assert rows["пр-т мира 3 стр 1"][2:] == (None, None)
    # the same file again: nothing added, nothing duplicated
    again = runner("buildings", "import", path)
    assert again.output.splitlines()[0].startswith("added 0, updated 4, refused 4"), again.output
    assert _rows() == rows
    # a corrected file updates in place
    fixed = _write(tmp_path, "address;entrances;apartments\nМосква, Ленина ул., д5;6;130\n"
                             "Москва ул Ленина 15;3;90\n", "fixed.csv")  # semicolon-separated, as Excel writes
    res = runner("buildings", "import", fixed)
    assert res.output.splitlines()[0].startswith("added 1, updated 1, refused 0"), res.output
    assert _rows()["москва ул ленина 5"][1:] == (FIAS, 6, 130)
    assert _rows()["москва ул ленина 15"][2:] == (3, 90)


def test_reimport_matches_the_normalised_address(ctx, runner, tmp_path):
    from crm.buildings.services import find, search

    res = runner("buildings", "import", _write(tmp_path, "address,entrances\n\"ул. Ленина, д. 5, к.2\",3\n"))
    assert res.output.startswith("added 1, updated 0, refused 0"), res.output
    res = runner("buildings", "import", _write(tmp_path, "address,entrances\n\"УЛИЦА ЛЕНИНА ДОМ 5 КОРПУС 2\",4\n",
                                              "b2.csv"))
    assert res.output.startswith("added 0, updated 1, refused 0"), res.output
    assert len(search("ленина")) == 1
    assert find("ул Ленина д5 к2").entrances == 4


def test_a_bad_file_writes_nothing(ctx, runner, tmp_path):
    from crm.buildings.services import search

    cp1251 = "address\nул. Ленина, д. 5\nул. Ленина, д. 7\n".encode("cp1251")
    res = runner("buildings", "import", _write(tmp_path, cp1251))
    assert res.exit_code == 1
    assert "UTF-8" in res.output and "nothing imported" in res.output
    res = runner("buildings", "import", _write(tmp_path, "street,house\nЛенина,5\n", "nohdr.csv"))
    assert res.exit_code == 1 and "address" in res.output
    # a file that breaks mid-way (bad quoting on line 3) rolls back the rows before it
    res = runner("buildings", "import", _write(tmp_path, "address\nул. Ленина 5\n\"ул. Мира\" 3\n", "q.csv"))
    assert res.exit_code == 1 and "строка 3" in res.output and "nothing imported" in res.output, res.output
    assert search("ленина") == [] and search("мира") == []


def test_a_fias_code_belongs_to_one_building(ctx, runner, tmp_path):
    csv = f"address,fias_id\n\"ул. Ленина, 5\",{FIAS.upper()}\n\"ул. Ленина, 7\",{FIAS}\nул. Мира 1,x,y\n"
    res = runner("buildings", "import", _write(tmp_path, csv))
    assert res.output.startswith("added 1, updated 0, refused 2"), res.output
    assert "line 3: fias_id" in res.output and "line 4: лишние ячейки" in res.output


def test_autocomplete_api(ctx, client, runner, tmp_path, make_user, api_token, login):
    runner("buildings", "import", _write(tmp_path, CSV))
    op = make_user("operator")
    resp = client.get("/api/v1/buildings?q=Ленина д.5", headers=api_token(op))
    assert resp.status_code == 200
    addresses = [i["address"] for i in resp.get_json()["items"]]
    assert addresses == ["Москва, улица Ленина, дом 5", "г. Москва, ул. Ленина, д. 5а"]  # exact first, not 15
    item = resp.get_json()["items"][0]
    assert set(item) == {"id", "address", "fias_id", "entrances", "apartments"} and item["fias_id"] == FIAS
    assert client.get("/api/v1/buildings?q=ЛЕНИНА 5А", headers=api_token(op)).get_json()["items"][0]["address"] \
        == "г. Москва, ул. Ленина, д. 5а"
    assert client.get("/api/v1/buildings?q=проспект мира", headers=api_token(op)).get_json()["items"][0]["address"] \
        == "пр-т Мира, 3 стр 1"
    assert client.get("/api/v1/buildings?q=", headers=api_token(op)).get_json() == {"items": []}
    assert len(client.get("/api/v1/buildings?q=москва&limit=1", headers=api_token(op)).get_json()["items"]) == 1
    assert client.get("/api/v1/buildings?q=москва&limit=500", headers=api_token(op)).status_code == 400
    # no token, no session: 401; a DPO has no business here: 403
    assert client.get("/api/v1/buildings?q=ленина").status_code == 401
    assert client.get("/api/v1/buildings?q=ленина", headers=api_token(make_user("dpo"))).status_code == 403
    # a signed-in operator's browser (the intake form's script) needs no token, and gets no cookie change
    login(op)
    resp = client.get("/api/v1/buildings?q=ленина")
    assert resp.status_code == 200 and len(resp.get_json()["items"]) == 2
    assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize("method", ["post"])
def test_the_session_does_not_open_writes(ctx, client, make_user, login, method):
    """session_ok is for GET only: the API is CSRF-exempt, a cookie must not authorise a write."""
    login(make_user("operator"))
    resp = client.post("/api/v1/citizens/search", json={"phone": "+7 912 000-12-34"})
    assert resp.status_code == 401


def test_the_register_page_for_supervisors_and_admins(ctx, client, runner, tmp_path, make_user, login):
    runner("buildings", "import", _write(tmp_path, CSV))
    login(make_user("operator"))
    assert client.get("/buildings").status_code == 403
    client.post("/logout")
    login(make_user("supervisor"))
    page = client.get("/buildings").get_data(as_text=True)
    assert "Реестр домов" in page and "пр-т Мира, 3 стр 1" in page and FIAS in page
    found = client.get("/buildings", query_string={"q": "ленина 5а"}).get_data(as_text=True)
    assert "г. Москва, ул. Ленина, д. 5а" in found and "пр-т Мира" not in found
    assert "Ничего не найдено" in client.get("/buildings", query_string={"q": "Тверская"}).get_data(as_text=True)
