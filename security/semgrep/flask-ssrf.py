import urllib.request

import httpx
import requests
from flask import Blueprint, Flask, request

app = Flask(__name__)
bp = Blueprint("webhooks", __name__)
PARTNERS = {"billing": "https://billing.internal.example/hooks"}


@bp.post("/webhooks/test")
def test_webhook():
    target = request.get_json()["url"]
    # ruleid: flask-ssrf
    response = requests.post(target, json={"ping": True}, timeout=5)
    return {"status": response.status_code}


@app.get("/preview")
def preview():
    # ruleid: flask-ssrf
    with urllib.request.urlopen(request.args["url"], timeout=5) as page:
        return page.read(1024)


@bp.get("/avatars/<host>")
def avatar(host):
    # ruleid: flask-ssrf
    return httpx.get(f"https://{host}/avatar.png", timeout=5).content


@bp.post("/webhooks/partner")
def partner_webhook():
    partner = request.get_json()["partner"]
    # ok: flask-ssrf
    response = requests.post(PARTNERS["billing"], json={"partner": partner}, timeout=5)
    return {"status": response.status_code}


@bp.get("/search")
def search():
    # ok: flask-ssrf
    response = requests.get(
        "https://search.internal.example/q", params={"q": request.args["q"]}, timeout=5
    )
    return response.json()
