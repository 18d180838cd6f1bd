#!/usr/bin/env python3
"""Use the P2P AI Agents network from Python through its HTTP gateway, with plain `requests`.

    python3 examples/python/client.py http://127.0.0.1:8787 [TOKEN]

TOKEN (or the GATEWAY_TOKEN environment variable) is the gateway's bearer token, when it was
started with --token-file. The script uploads a model, runs one task, runs a batch while
streaming its results, and reads the text of a page image. It exits with status 1 and the
gateway's error code and message when a call fails.
"""
import base64
import json
import os
import sys
from pathlib import Path

import requests

SAMPLES = Path(__file__).resolve().parent.parent.parent / "public" / "samples"
BATCH = 200


class GatewayError(Exception):
    """A failed call: the gateway answers every failure as {"error": {"code", "message"}}."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.code = code


def check(resp):
    if resp.status_code >= 400:
        try:
            err = resp.json()["error"]
        except (ValueError, KeyError):
            err = {"code": "http", "message": resp.text[:200]}
        raise GatewayError(resp.status_code, err["code"], err["message"])
    return resp


def main(url, token):
    http = requests.Session()
    if token:
        http.headers["Authorization"] = f"Bearer {token}"

    health = check(http.get(f"{url}/healthz", timeout=10)).json()
    print(f"health: {health['workers']} worker(s)")

    # 1. Upload a model: the body is the .onnx file; workers fetch it from the gateway by sha256.
    onnx = (SAMPLES / "models" / "add-mul.onnx").read_bytes()
    model = check(http.post(f"{url}/v1/models", params={"name": "add-mul.onnx"}, data=onnx,
                            headers={"Content-Type": "application/octet-stream"}, timeout=60)).json()
    print(f"model: {model['name']} sha256 {model['sha256']} inputs {', '.join(i['name'] for i in model['inputs'])}")

    # 2. One task, answered once its result is verified (two workers must agree here).
    inputs = json.loads((SAMPLES / "models" / "add-mul.inputs.json").read_text())
    out = check(http.post(f"{url}/v1/run", json={"model": model["sha256"], "inputs": inputs, "replicas": 2}, timeout=120)).json()
    total = next(t for t in out["outputs"] if t["name"] == "sum")
    print(f"run: sum dims {total['dims']} data {total['data']}, agreed by {len(out['agreedBy'])} workers")

    # 3. A batch: one task's inputs per JSONL line, the job's settings in the query string.
    lines = "\n".join(json.dumps({"a": [[i, 1]], "b": [[2, 3]]}) for i in range(BATCH)) + "\n"
    job = check(http.post(f"{url}/v1/jobs", params={"model": model["sha256"], "replicas": 1}, data=lines,
                          headers={"Content-Type": "application/x-ndjson"}, timeout=60)).json()
    print(f"job: {job['id']} with {job['total']} tasks")

    # Results stream in input order as they are decided, while the job runs.
    right = 0
    count = 0
    with check(http.get(f"{url}/v1/jobs/{job['id']}/results", stream=True, timeout=120)) as resp:
        for line in resp.iter_lines():
            if not line:
                continue
            result = json.loads(line)
            if "index" not in result:
                raise GatewayError(resp.status_code, result["error"]["code"], result["error"]["message"])
            if "error" in result:
                print(f"task {result['index']} failed: {result['error']}")
            else:
                got = next(t for t in result["outputs"] if t["name"] == "sum")["data"]
                right += got == [result["index"] + 2, 4]
            count += 1
    status = check(http.get(f"{url}/v1/jobs/{job['id']}", timeout=10)).json()
    print(f"results: {count} in order, {right} right; job {status['state']}, "
          f"workers {', '.join(w['peerId'][-6:] + '=' + str(w['results']) for w in status['workers'])}")

    # 4. OCR: PNG pages as base64; each page gives its text and its lines with boxes.
    png = base64.b64encode((SAMPLES / "ocr" / "note.png").read_bytes()).decode()
    ocr = check(http.post(f"{url}/v1/ocr", json={"images": [png]}, timeout=300)).json()
    page = ocr["pages"][0]
    print(f"ocr: {len(page['lines'])} line(s)")
    for line in page["lines"]:
        print(f"  {line['text']}  (score {line['score']:.2f})")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1].rstrip("/"), sys.argv[2] if len(sys.argv) == 3 else os.environ.get("GATEWAY_TOKEN"))
    except GatewayError as e:
        print(f"client: {e}", file=sys.stderr)
        sys.exit(1)
    except requests.RequestException as e:
        print(f"client: cannot reach the gateway: {e}", file=sys.stderr)
        sys.exit(1)
