"""/docs works on a host without internet: every asset it loads comes from the daemon itself."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx

from conftest import RunningDaemon


def test_docs_load_nothing_from_another_host(daemon: RunningDaemon) -> None:
    client = daemon.client()  # /docs needs no token, like /openapi.json
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    # Every URL the page names: src= and href= attributes and quoted URLs in its script.
    found = set(re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text))
    found |= set(re.findall(r"""["'`]((?:https?:)?//[^"'`]+)["'`]""", page.text))
    found |= set(re.findall(r"""url:\s*["']([^"']+)["']""", page.text))
    assert found, page.text
    own = urlsplit(daemon.base_url).netloc
    for url in found:
        absolute = urljoin(f"{daemon.base_url}/docs", url)
        assert urlsplit(absolute).netloc == own, f"/docs loads {url} from another host"
    # The assets are really there (a page pointing at missing files is as blank as a CDN's).
    assets = [u for u in found if re.search(r"\.(js|css|png)$", u)]
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        response = client.get(urljoin(f"{daemon.base_url}/docs", asset))
        assert response.status_code == 200 and len(response.content) > 1000, asset
    assert client.get("/openapi.json").status_code == 200


def test_redoc_is_not_offered(daemon: RunningDaemon) -> None:
    # Only Swagger UI is served; a ReDoc page would need its own offline assets.
    assert daemon.client().get("/redoc").status_code == 404


def test_docs_assets_need_no_token_but_the_api_does(daemon: RunningDaemon) -> None:
    anonymous = httpx.Client(base_url=daemon.base_url, timeout=10)
    with anonymous:
        assert anonymous.get("/api/v1/contracts").status_code == 401
        assert anonymous.get("/docs").status_code == 200
