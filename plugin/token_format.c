/*
 * Token generation, shape check and hashing. See include/token_format.h.
 * base64url comes from OpenSSL's base64 with two characters swapped, the
 * checksum from zlib's crc32, as the spec defines it.
 */
#include <string.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <zlib.h>

#include "token_format.h"

#define CHECKED_LEN (TOKEN_PREFIX_LEN + TOKEN_BODY_LEN)

static bool is_base64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
		|| (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void checksum_hex(const char *text, size_t len, char out[TOKEN_CHECKSUM_LEN + 1])
{
	unsigned long crc = crc32(0L, (const Bytef *)text, (uInt)len);
	snprintf(out, TOKEN_CHECKSUM_LEN + 1, "%08lx", crc & 0xffffffffUL);
}

enum token_shape token_format_check(const char *password)
{
	if(password == NULL || strncmp(password, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0){
		return TOKEN_NOT_A_TOKEN;
	}
	if(strlen(password) != TOKEN_LEN){
		return TOKEN_MALFORMED;
	}
	for(size_t i = TOKEN_PREFIX_LEN; i < CHECKED_LEN; i++){
		if(!is_base64url_char(password[i])){
			return TOKEN_MALFORMED;
		}
	}
	char expected[TOKEN_CHECKSUM_LEN + 1];
	checksum_hex(password, CHECKED_LEN, expected);
	if(memcmp(expected, password + CHECKED_LEN, TOKEN_CHECKSUM_LEN) != 0){
		return TOKEN_MALFORMED;
	}
	return TOKEN_WELL_FORMED;
}

bool token_format_generate(char out[TOKEN_LEN + 1])
{
	unsigned char random[TOKEN_RANDOM_BYTES];
	unsigned char base64[4 * ((TOKEN_RANDOM_BYTES + 2) / 3) + 1];

	if(RAND_bytes(random, sizeof(random)) != 1){
		return false;
	}
	EVP_EncodeBlock(base64, random, sizeof(random));
	OPENSSL_cleanse(random, sizeof(random));

	memcpy(out, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	for(size_t i = 0; i < TOKEN_BODY_LEN; i++){
		char c = (char)base64[i];
		out[TOKEN_PREFIX_LEN + i] = (c == '+') ? '-' : (c == '/') ? '_' : c;
	}
	OPENSSL_cleanse(base64, sizeof(base64));
	checksum_hex(out, CHECKED_LEN, out + CHECKED_LEN);
	out[TOKEN_LEN] = '\0';
	return true;
}

void token_format_hash(const char *token, unsigned char out[TOKEN_HASH_LEN])
{
	SHA256((const unsigned char *)token, strlen(token), out);
}

bool token_hasher_init(struct token_hasher *hasher)
{
	hasher->digest = EVP_MD_fetch(NULL, "SHA256", NULL);
	hasher->context = EVP_MD_CTX_new();
	if(hasher->digest == NULL || hasher->context == NULL){
		token_hasher_free(hasher);
		return false;
	}
	return true;
}

void token_hasher_free(struct token_hasher *hasher)
{
	EVP_MD_CTX_free(hasher->context);
	EVP_MD_free(hasher->digest);
	hasher->context = NULL;
	hasher->digest = NULL;
}

bool token_hasher_hash(struct token_hasher *hasher, const char *token, unsigned char out[TOKEN_HASH_LEN])
{
	unsigned int length = 0;
	return EVP_DigestInit_ex2(hasher->context, hasher->digest, NULL) == 1
		&& EVP_DigestUpdate(hasher->context, token, strlen(token)) == 1
		&& EVP_DigestFinal_ex(hasher->context, out, &length) == 1
		&& length == TOKEN_HASH_LEN;
}

void token_format_hash_to_hex(const unsigned char hash[TOKEN_HASH_LEN],
		char out[TOKEN_HASH_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for(size_t i = 0; i < TOKEN_HASH_LEN; i++){
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 0x0f];
	}
	out[TOKEN_HASH_HEX_LEN] = '\0';
}

/* -1 for anything but 0-9a-f: the hash is always written in lowercase. */
static int hex_value(char c)
{
	static const signed char values[256] = {
		['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
		['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	};
	return values[(unsigned char)c] - 1;
}

bool token_format_hash_from_hex(const char *hex, unsigned char out[TOKEN_HASH_LEN])
{
	if(hex == NULL || strlen(hex) != TOKEN_HASH_HEX_LEN){
		return false;
	}
	for(size_t i = 0; i < TOKEN_HASH_LEN; i++){
		int high = hex_value(hex[2 * i]);
		int low = hex_value(hex[2 * i + 1]);
		if(high < 0 || low < 0){
			return false;
		}
		out[i] = (unsigned char)(high << 4 | low);
	}
	return true;
}
