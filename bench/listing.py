"""make bench, section 5: listTokens pages from a store of a million tokens
(issue 18). Target: a 50-token page in at most 2 ms, first page and last
page alike, for the default order and each filter; no other client's round
trip above 20 ms while pages are read in a loop.

The store (make_state --mixed): names of five prefixes in no relation to
their issue times, three device roles, one token in ten expired. Times are
round trips over MQTT as an admin client sees them (the request, the page's
JSON, the reply), the median and the worst of 20 runs each.

Used by bench/run.py, which passes its broker factory.
"""
import json
import statistics
import time

from hostile import Client, RoundTrips

FILTERS = [
    ("no filter", {}),
    ("status valid", {"status": "valid"}),
    ("status invalid", {"status": "invalid"}),
    ("role", {"role": "sensors"}),
    ("namePrefix, 40% of names", {"namePrefix": "device-"}),
    ("namePrefix, 20% of names", {"namePrefix": "gw/"}),
    ("namePrefix, 11 names", {"namePrefix": "ops-00000"}),
    ("role + namePrefix 20%", {"role": "sensors", "namePrefix": "sensor-"}),
    ("valid + role + namePrefix", {"status": "valid", "role": "gateways", "namePrefix": "gw/"}),
]


def page(client, fields, offset, count=50):
    payload = json.dumps({"commands": [dict(fields, command="listTokens", count=count, offset=offset)]})
    reply, seconds = client.request(payload)
    data = json.loads(reply)["responses"][0]["data"]
    return data, seconds


def timed(client, fields, offset, runs=20):
    times = []
    for _ in range(runs):
        data, seconds = page(client, fields, offset)
        times.append(seconds)
    return data, statistics.median(times), max(times)


def listing_pages(folder, tokens_broker):
    count = 1000000
    print(f"\n5. listTokens pages of 50 from {count} tokens (target: at most 2 ms; others' round trips "
          "at most 20 ms):")
    broker, admin = tokens_broker(folder, count, "listing")
    broker.start()
    try:
        client = Client(broker.port, admin, "bench-lister")
        print(f"   {'filter':<28} {'total':>8}  {'first page':>17}  {'last page':>17}")
        for label, fields in FILTERS:
            first, median_first, worst_first = timed(client, fields, 0)
            total = first["totalCount"]
            _, median_last, worst_last = timed(client, fields, max(total - 50, 0))
            print(f"   {label:<28} {total:>8}  {median_first * 1000:>6.2f} ms ({worst_first * 1000:>5.2f})"
                  f"  {median_last * 1000:>6.2f} ms ({worst_last * 1000:>5.2f})")
        print("   (median, worst in brackets)")
        for label, fields in FILTERS:
            bystander = RoundTrips(broker.port, admin)
            time.sleep(0.2)
            started = time.perf_counter()
            pages = 0
            offset = 0
            while time.perf_counter() - started < 2:
                data, _ = page(client, fields, offset)
                offset = offset + 50 if offset + 50 < data["totalCount"] else 0
                pages += 1
            longest = bystander.finish()
            print(f"   reading pages in a loop, {label}: {pages} pages in 2 s, longest round trip of another "
                  f"client {longest * 1000:.1f} ms ({bystander.count} round trips)")
        client.close()
    finally:
        broker.stop()
