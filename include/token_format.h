/*
 * Token format (SPEC section 1): "mqtk_" + 43 base64url characters of
 * CSPRNG bytes + CRC-32 of the first 48 characters as 8 lowercase hex digits.
 *
 * The prefix lets the plugin pass other passwords on untouched; the checksum
 * rejects typos and truncation before any lookup. Only the SHA-256 hash of a
 * token is ever kept.
 */
#ifndef TOKEN_FORMAT_H
#define TOKEN_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_PREFIX "mqtk_"
#define TOKEN_PREFIX_LEN 5
#define TOKEN_RANDOM_BYTES 32
#define TOKEN_BODY_LEN 43
#define TOKEN_CHECKSUM_LEN 8
#define TOKEN_LEN (TOKEN_PREFIX_LEN + TOKEN_BODY_LEN + TOKEN_CHECKSUM_LEN)
#define TOKEN_HASH_LEN 32
#define TOKEN_HASH_HEX_LEN 64

enum token_shape {
	TOKEN_NOT_A_TOKEN,  /* no "mqtk_" prefix: someone else's password */
	TOKEN_MALFORMED,    /* prefix, but wrong length, alphabet or checksum */
	TOKEN_WELL_FORMED,
};

enum token_shape token_format_check(const char *password);

/* Fills out with a new NUL-terminated token; false if the CSPRNG failed. */
bool token_format_generate(char out[TOKEN_LEN + 1]);

void token_format_hash(const char *token, unsigned char out[TOKEN_HASH_LEN]);

/* The same hash for the login path: OpenSSL 3 looks the digest up on every
 * one-shot call, which costs more than hashing 56 bytes. A hasher fetches
 * it once and reuses one context. */
struct token_hasher {
	struct evp_md_st *digest;
	struct evp_md_ctx_st *context;
};
bool token_hasher_init(struct token_hasher *hasher);
void token_hasher_free(struct token_hasher *hasher);
/* False only if OpenSSL fails. */
bool token_hasher_hash(struct token_hasher *hasher, const char *token, unsigned char out[TOKEN_HASH_LEN]);

void token_format_hash_to_hex(const unsigned char hash[TOKEN_HASH_LEN],
		char out[TOKEN_HASH_HEX_LEN + 1]);

/* Accepts exactly 64 lowercase hex digits, as the hash is always written. */
bool token_format_hash_from_hex(const char *hex, unsigned char out[TOKEN_HASH_LEN]);

#endif
