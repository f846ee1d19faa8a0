"""Send the served example one valid request and a few that break its contract; print answers."""

from __future__ import annotations

import argparse
import json

import httpx

VALID = {
    "transaction_id": "tx_demo_0001",
    "event_time": "2026-03-20T02:41:07Z",
    "amount_eur": 1899.0,
    "merchant_category": "electronics",
    "country": "US",
    "hour_of_day": 3,
    "card_age_days": 4,
    "tx_count_1h": 5,
    "tx_count_24h": 9,
    "distance_from_home_km": 7300.5,
    "device_changed": True,
}

CASES = [
    ("valid record", VALID, {}),
    ("null amount", {**VALID, "amount_eur": None}, {}),
    ("amount out of range", {**VALID, "amount_eur": 99999.0}, {}),
    ("unseen country", {**VALID, "country": "ZZ"}, {}),
    ("extra column", {**VALID, "coupon": "X"}, {}),
    ("text in a number", {**VALID, "card_age_days": "four"}, {}),
    ("idempotent retry", VALID, {"Idempotency-Key": "demo-1"}),
    ("same key, other body", {**VALID, "amount_eur": 5.0}, {"Idempotency-Key": "demo-1"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    args = parser.parse_args()
    with httpx.Client(base_url=args.url, timeout=10) as client:
        for name, body, headers in CASES:
            response = client.post("/predict", json=body, headers=headers)
            data = response.json()
            if response.status_code == 200:
                shown = json.dumps(data["predictions"][0])
            else:
                violations = data["error"].get("violations") or []
                shown = data["error"]["code"] + "".join(
                    f" [{v['field']}: {v['rule']}]" for v in violations
                )
            print(f"{name:<22} {response.status_code}  {shown}")


if __name__ == "__main__":
    main()
