#!/usr/bin/python3
"""Writes the console fuzzer's seed corpus, test/fuzz/corpus/console/.

Each seed is the raw bytes of one or more HTTP requests: every endpoint and
method of SPEC section 8, the page, each broker outcome of the fake broker
(test/fuzz/fake_broker_link.c: the token's first random character picks
it), and a few malformed requests. The tokens are made here because their
checksum (SPEC section 1) is out of a mutator's reach; none is anyone's
secret.

    /usr/bin/python3 test/fuzz/make_console_corpus.py
"""
import os
import zlib

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "console")
HASH = "0123456789abcdef" * 4


def token(outcome, variant="a"):
    """A well-formed token whose random part starts with outcome, variant."""
    body = (outcome + variant + "fuzzSeedNotASecret" * 3)[:43]
    checked = "mqtk_" + body
    return checked + "%08x" % (zlib.crc32(checked.encode()) & 0xFFFFFFFF)


def request(method, path, headers=(), body=None, bearer=None, host="localhost:8088"):
    """host None: no Host header."""
    lines = [f"{method} {path} HTTP/1.1"] + ([f"Host: {host}"] if host is not None else [])
    if bearer:
        lines.append(f"Authorization: Bearer {bearer}")
    lines.extend(headers)
    if body is not None and not any(h.lower().startswith("transfer-encoding") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + (body or "")).encode()


def error_variant(code):
    """The variant character for which the fake broker answers with code:
    one of SPEC section 4's, "number" for a code that is not a string, or
    None for no code."""
    codes = ["invalid", "notFound", "exists", "inUse", "limit", "storage", "internal", "somethingNew", "number", None]
    wanted = codes.index(code)
    return next(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ" if ord(c) % len(codes) == wanted)


OK = token("S")
NEW_TOKEN = '{"name":"ci-bot","role":"reader","validUntil":"2027-01-01T00:00:00Z"}'

SEEDS = {
    # The page.
    "page_index": request("GET", "/"),
    "page_app_js": request("GET", "/app.js", ["Accept: */*"]),
    "page_style_head": request("HEAD", "/style.css"),
    "page_missing": request("GET", "/favicon.ico"),
    "page_post": request("POST", "/index.html", body="x=1"),
    # The API, each endpoint and method of SPEC section 8.
    "list_tokens": request("GET", "/api/tokens?status=valid&count=10&offset=0", bearer=OK),
    "list_tokens_bad_count": request("GET", "/api/tokens?count=ten", bearer=OK),
    "list_tokens_query_token": request("GET", f"/api/tokens?token={OK}"),
    "get_token": request("GET", f"/api/tokens/{HASH}", bearer=OK),
    "get_token_bad_hash": request("GET", "/api/tokens/ABC", bearer=OK),
    "revoke_token_not_found": request("DELETE", f"/api/tokens/{HASH}", bearer=token("E", error_variant("notFound"))),
    "patch_tokens": request("PATCH", "/api/tokens", body="{}", bearer=OK),
    "put_token": request("PUT", f"/api/tokens/{HASH}", body="{}", bearer=OK),
    "create_token": request("POST", "/api/tokens", ["Content-Type: application/json"], NEW_TOKEN, bearer=OK),
    "create_token_exists_chunked": request(
        "POST", "/api/tokens", ["Transfer-Encoding: chunked"],
        "%x\r\n%s\r\n0\r\n\r\n" % (len(NEW_TOKEN), NEW_TOKEN), bearer=token("E", error_variant("exists"))),
    "create_token_not_object": request("POST", "/api/tokens", body='["name"]', bearer=OK),
    "create_token_without_body": request("POST", "/api/tokens", bearer=OK),
    "create_token_invalid": request("POST", "/api/tokens", body='{"name":"ci-bot","role":7,"extra":[]}',
                                    bearer=token("E", error_variant("invalid"))),
    "create_token_too_large": request("POST", "/api/tokens", body='{"name":"' + "n" * 16400 + '"}', bearer=OK),
    "list_roles": request("GET", "/api/roles", bearer=OK),
    "delete_roles": request("DELETE", "/api/roles", bearer=OK),
    "list_tokens_filters": request("GET", "/api/tokens?role=cams&namePrefix=caf%C3%A9%20&count=5", bearer=OK),
    "rotate_token": request("POST", f"/api/tokens/{HASH}/rotate", body='{"graceSeconds":60}', bearer=OK),
    "rotate_token_without_body": request("POST", f"/api/tokens/{HASH}/rotate", bearer=OK),
    "rotate_token_wrong_method": request("GET", f"/api/tokens/{HASH}/rotate", bearer=OK),
    "get_role_encoded": request("GET", "/api/roles/team%2Fa", bearer=OK),
    "get_role_bad_escape": request("GET", "/api/roles/%zz", bearer=OK),
    "create_role": request("POST", "/api/roles", body='{"rolename":"r","acls":[]}', bearer=OK),
    "delete_role_in_use": request("DELETE", "/api/roles/r", bearer=token("E", error_variant("inUse"))),
    "add_role_acl": request("POST", "/api/roles/r%20x/acls",
                            body='{"acltype":"subscribePattern","topic":"a/#","allow":true}', bearer=OK),
    "remove_role_acl_trailing": request("DELETE", "/api/roles/r/acls",
                                        body='{"acltype":"subscribePattern","topic":"a/#"} x', bearer=OK),
    "role_path_too_deep": request("GET", "/api/roles/r/acls/x", bearer=OK),
    "unknown_api_path": request("GET", "/api/users", bearer=OK),
    # The caller's token and the broker's outcomes.
    "no_token": request("GET", "/api/tokens"),
    "malformed_token": request("GET", "/api/roles", bearer="mqtk_tooShort"),
    "refused_forbidden_unreachable_timeout": b"".join(
        request("GET", "/api/roles", bearer=token(outcome)) for outcome in "RFUT"),
    "broker_not_a_tokens_reply": request("GET", "/api/tokens", bearer=token("X", "b")),
    "broker_error_without_text_code": request("GET", f"/api/tokens/{HASH}", bearer=token("E", error_variant("number"))),
    "broker_success_without_data": request("DELETE", f"/api/tokens/{HASH}", bearer=token("D")),
    # Malformed requests.
    "garbage": b"\x00\xffGARBAGE / \r\n\r\n",
    "http10_header_without_colon": b"GET /api/roles HTTP/1.0\r\nAuthorization Bearer x\r\n\r\n",
    "body_shorter_than_length": request("POST", "/api/tokens", ["Content-Length: 100"], bearer=OK)
    + b'{"name":',
    # What is checked before routing: the Host, the framing, a NUL in the path.
    "host_allowed_name": request("GET", "/api/roles", bearer=OK, host="Console.Example:8088"),
    "host_rebinding": request("GET", "/api/tokens", bearer=OK, host="evil.example:8088"),
    "host_wrong_port": request("GET", "/", host="127.0.0.1:8089"),
    "host_ipv6_literal": request("GET", "/", host="[::1]:8088"),
    "host_missing": request("GET", "/", host=None),
    "host_twice": request("GET", "/", ["Host: evil.example"]),
    "content_length_twice": request("POST", "/api/tokens", ["Content-Length: %d" % len(NEW_TOKEN)], NEW_TOKEN,
                                    bearer=OK),
    "content_length_and_chunked": request("POST", "/api/tokens", ["Content-Length: 5", "Transfer-Encoding: chunked"],
                                          "5\r\nhello\r\n0\r\n\r\n", bearer=OK),
    "transfer_encoding_gzip": request("POST", "/api/tokens", ["Transfer-Encoding: gzip"], "x", bearer=OK),
    "nul_in_path": request("GET", "/index.html%00.js") + request("GET", "/api/tokens%00", bearer=OK),
    "nul_in_query": request("GET", "/api/tokens?status=valid%00x", bearer=OK),
}


def main():
    os.makedirs(CORPUS, exist_ok=True)
    for name in os.listdir(CORPUS):
        os.remove(os.path.join(CORPUS, name))
    for name, data in SEEDS.items():
        with open(os.path.join(CORPUS, name), "wb") as seed:
            seed.write(data)


if __name__ == "__main__":
    main()
