/*
 * Token format (SPEC section 1): generation, shape check, hashing, hex.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include <zlib.h>

#include "test_support.h"
#include "token_format.h"

/* A well-formed token with a body of '-' and '_' and a checksum with letters. */
static const char FIXED_TOKEN[] = "mqtk_0123456789abcdefghijABCDEFGHIJ-_klmnopqrstufa550122";
/* sha256sum of FIXED_TOKEN, computed outside the project. */
#define FIXED_TOKEN_SHA256 "99df93dcc260913afffed8f646233b261b95a8460f76d7d5a355eeffb27a7705"
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static bool is_base64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The checksum the spec defines, computed here with zlib directly. */
static void spec_checksum(const char *token, char out[9])
{
	uLong crc = crc32(0L, (const Bytef *)token, 48);
	snprintf(out, 9, "%08lx", (unsigned long)(crc & 0xffffffffUL));
}

/* "mqtk_" + body (43 chars, any bytes) + the right checksum. */
static void make_token(const char *body, char out[TOKEN_LEN + 1])
{
	assert_int_equal(strlen(body), TOKEN_BODY_LEN);
	memcpy(out, "mqtk_", 5);
	memcpy(out + 5, body, TOKEN_BODY_LEN);
	spec_checksum(out, out + 48);
	out[TOKEN_LEN] = '\0';
}

static void generated_tokens_follow_the_format(void **state)
{
	(void)state;
	for(int round = 0; round < 200; round++){
		char token[TOKEN_LEN + 1];
		memset(token, '#', sizeof(token));
		assert_true(token_format_generate(token));
		assert_int_equal(strlen(token), 56);
		assert_memory_equal(token, "mqtk_", 5);
		for(size_t i = 5; i < 48; i++){
			if(!is_base64url(token[i])){
				fail_msg("character %zu of %s is not base64url", i, token);
			}
		}
		char checksum[9];
		spec_checksum(token, checksum);
		assert_string_equal(token + 48, checksum);
		assert_int_equal(token_format_check(token), TOKEN_WELL_FORMED);
	}
}

static void two_generated_tokens_differ(void **state)
{
	(void)state;
	char first[TOKEN_LEN + 1], second[TOKEN_LEN + 1];
	assert_true(token_format_generate(first));
	assert_true(token_format_generate(second));
	assert_string_not_equal(first, second);
	/* Not just the checksum: the random part differs. */
	assert_memory_not_equal(first + 5, second + 5, TOKEN_BODY_LEN);

	unsigned char first_hash[TOKEN_HASH_LEN], second_hash[TOKEN_HASH_LEN];
	token_format_hash(first, first_hash);
	token_format_hash(second, second_hash);
	assert_memory_not_equal(first_hash, second_hash, TOKEN_HASH_LEN);
}

static void other_passwords_are_not_tokens(void **state)
{
	(void)state;
	assert_int_equal(token_format_check(NULL), TOKEN_NOT_A_TOKEN);
	assert_int_equal(token_format_check(""), TOKEN_NOT_A_TOKEN);
	assert_int_equal(token_format_check("password"), TOKEN_NOT_A_TOKEN);
	assert_int_equal(token_format_check("mqtk"), TOKEN_NOT_A_TOKEN);
	assert_int_equal(token_format_check("mqtk-0123"), TOKEN_NOT_A_TOKEN);
	/* The prefix is case-sensitive. */
	char upper[TOKEN_LEN + 1];
	strcpy(upper, FIXED_TOKEN);
	memcpy(upper, "MQTK_", 5);
	assert_int_equal(token_format_check(upper), TOKEN_NOT_A_TOKEN);
	/* A leading space is someone else's password too. */
	char *spaced = test_format(" %s", FIXED_TOKEN);
	assert_int_equal(token_format_check(spaced), TOKEN_NOT_A_TOKEN);
	free(spaced);
}

static void fixed_and_constructed_tokens_are_well_formed(void **state)
{
	(void)state;
	assert_int_equal(token_format_check(FIXED_TOKEN), TOKEN_WELL_FORMED);
	char token[TOKEN_LEN + 1];
	make_token("___________________________________________", token);
	assert_int_equal(token_format_check(token), TOKEN_WELL_FORMED);
	make_token("-------------------------------------------", token);
	assert_int_equal(token_format_check(token), TOKEN_WELL_FORMED);
}

static void wrong_length_is_malformed(void **state)
{
	(void)state;
	char token[TOKEN_LEN + 2];
	assert_true(token_format_generate(token));
	for(size_t length = 5; length < TOKEN_LEN; length++){
		char truncated[TOKEN_LEN + 1];
		memcpy(truncated, token, length);
		truncated[length] = '\0';
		if(token_format_check(truncated) != TOKEN_MALFORMED){
			fail_msg("a token truncated to %zu characters is not malformed", length);
		}
	}
	char *longer = test_format("%sa", token);
	assert_int_equal(token_format_check(longer), TOKEN_MALFORMED);
	free(longer);
	longer = test_format("%s0", FIXED_TOKEN);
	assert_int_equal(token_format_check(longer), TOKEN_MALFORMED);
	free(longer);
	/* Checksum first, body after: right length and alphabet, wrong order. */
	char *swapped = test_format("mqtk_fa550122%.43s", FIXED_TOKEN + 5);
	assert_int_equal(strlen(swapped), TOKEN_LEN);
	assert_int_equal(token_format_check(swapped), TOKEN_MALFORMED);
	free(swapped);
}

static void any_changed_character_is_malformed(void **state)
{
	(void)state;
	/* CRC-32 catches every single-character change in the body. */
	for(size_t i = 5; i < 48; i++){
		char changed[TOKEN_LEN + 1];
		strcpy(changed, FIXED_TOKEN);
		changed[i] = changed[i] == 'A' ? 'B' : 'A';
		if(token_format_check(changed) != TOKEN_MALFORMED){
			fail_msg("changing body character %zu was not detected: %s", i, changed);
		}
	}
	/* And every change of a checksum digit. */
	for(size_t i = 48; i < TOKEN_LEN; i++){
		char changed[TOKEN_LEN + 1];
		strcpy(changed, FIXED_TOKEN);
		changed[i] = changed[i] == '0' ? '1' : '0';
		if(token_format_check(changed) != TOKEN_MALFORMED){
			fail_msg("changing checksum character %zu was not detected: %s", i, changed);
		}
	}
}

static void uppercase_checksum_is_malformed(void **state)
{
	(void)state;
	char token[TOKEN_LEN + 1];
	strcpy(token, FIXED_TOKEN);
	/* The fixed token's checksum, fa550122, has letters. */
	for(size_t i = 48; i < TOKEN_LEN; i++){
		token[i] = (char)toupper((unsigned char)token[i]);
	}
	assert_string_equal(token + 48, "FA550122");
	assert_int_equal(token_format_check(token), TOKEN_MALFORMED);
}

static void characters_outside_base64url_are_malformed(void **state)
{
	(void)state;
	/* Each body gets its correct checksum: only the alphabet is wrong. */
	static const char bad[] = {'+', '/', '=', '.', ' ', '~', '\x7f', '\xc3', '\xff'};
	for(size_t b = 0; b < sizeof(bad); b++){
		for(size_t position = 0; position < TOKEN_BODY_LEN; position += 21){
			char body[TOKEN_BODY_LEN + 1];
			memcpy(body, FIXED_TOKEN + 5, TOKEN_BODY_LEN);
			body[TOKEN_BODY_LEN] = '\0';
			body[position] = bad[b];
			char token[TOKEN_LEN + 1];
			make_token(body, token);
			if(token_format_check(token) != TOKEN_MALFORMED){
				fail_msg("byte 0x%02x at body position %zu was accepted",
						(unsigned)(unsigned char)bad[b], position);
			}
		}
	}
	/* Standard base64 with padding, as a careless encoder would write it. */
	char token[TOKEN_LEN + 1];
	make_token("0123456789abcdefghijABCDEFGHIJ+/klmnopqrst=", token);
	assert_int_equal(token_format_check(token), TOKEN_MALFORMED);
}

static void hash_is_sha256_of_the_string(void **state)
{
	(void)state;
	unsigned char hash[TOKEN_HASH_LEN];
	char hex[TOKEN_HASH_HEX_LEN + 1];

	token_format_hash("abc", hash);
	token_format_hash_to_hex(hash, hex);
	assert_string_equal(hex, ABC_SHA256);

	token_format_hash(FIXED_TOKEN, hash);
	token_format_hash_to_hex(hash, hex);
	assert_string_equal(hex, FIXED_TOKEN_SHA256);

	/* A generated token's hash is the SHA-256 of exactly its 56 characters. */
	char token[TOKEN_LEN + 1];
	assert_true(token_format_generate(token));
	unsigned char expected[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, TOKEN_LEN, expected);
	token_format_hash(token, hash);
	assert_memory_equal(hash, expected, TOKEN_HASH_LEN);
}

static void hash_hex_round_trip(void **state)
{
	(void)state;
	unsigned char hash[TOKEN_HASH_LEN], back[TOKEN_HASH_LEN];
	char hex[TOKEN_HASH_HEX_LEN + 1];

	assert_true(token_format_hash_from_hex(ABC_SHA256, hash));
	assert_int_equal(hash[0], 0xba);
	assert_int_equal(hash[1], 0x78);
	assert_int_equal(hash[31], 0xad);
	token_format_hash_to_hex(hash, hex);
	assert_string_equal(hex, ABC_SHA256);

	/* Every byte value, in every nibble position. */
	for(int start = 0; start < 256; start += TOKEN_HASH_LEN){
		for(int i = 0; i < TOKEN_HASH_LEN; i++){
			hash[i] = (unsigned char)(start + i);
		}
		memset(hex, '#', sizeof(hex));
		token_format_hash_to_hex(hash, hex);
		assert_int_equal(strlen(hex), TOKEN_HASH_HEX_LEN);
		for(size_t i = 0; i < TOKEN_HASH_HEX_LEN; i++){
			assert_true(strchr("0123456789abcdef", hex[i]) != NULL);
		}
		memset(back, 0, sizeof(back));
		assert_true(token_format_hash_from_hex(hex, back));
		assert_memory_equal(back, hash, TOKEN_HASH_LEN);
	}
	memset(hash, 0, sizeof(hash));
	token_format_hash_to_hex(hash, hex);
	assert_string_equal(hex, "0000000000000000000000000000000000000000000000000000000000000000");
	memset(hash, 0xff, sizeof(hash));
	token_format_hash_to_hex(hash, hex);
	assert_string_equal(hex, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
}

static void hash_from_hex_refuses_other_spellings(void **state)
{
	(void)state;
	unsigned char hash[TOKEN_HASH_LEN];
	char text[80];

	assert_false(token_format_hash_from_hex(NULL, hash));
	assert_false(token_format_hash_from_hex("", hash));
	/* Uppercase, entirely or one digit. */
	assert_false(token_format_hash_from_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", hash));
	strcpy(text, ABC_SHA256);
	text[63] = 'D';
	assert_false(token_format_hash_from_hex(text, hash));
	/* 63 and 65 digits. */
	snprintf(text, sizeof(text), "%.63s", ABC_SHA256);
	assert_false(token_format_hash_from_hex(text, hash));
	snprintf(text, sizeof(text), "%s0", ABC_SHA256);
	assert_false(token_format_hash_from_hex(text, hash));
	/* Non-hex characters anywhere. */
	static const char bad[] = {'g', 'G', 'x', ' ', '-', ':', '\xff'};
	for(size_t b = 0; b < sizeof(bad); b++){
		for(size_t position = 0; position < TOKEN_HASH_HEX_LEN; position += 9){
			strcpy(text, ABC_SHA256);
			text[position] = bad[b];
			if(token_format_hash_from_hex(text, hash)){
				fail_msg("byte 0x%02x at position %zu was accepted", (unsigned)(unsigned char)bad[b], position);
			}
		}
	}
	/* A "0x" prefix is not part of the spelling. */
	snprintf(text, sizeof(text), "0x%.62s", ABC_SHA256);
	assert_false(token_format_hash_from_hex(text, hash));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(generated_tokens_follow_the_format),
		cmocka_unit_test(two_generated_tokens_differ),
		cmocka_unit_test(other_passwords_are_not_tokens),
		cmocka_unit_test(fixed_and_constructed_tokens_are_well_formed),
		cmocka_unit_test(wrong_length_is_malformed),
		cmocka_unit_test(any_changed_character_is_malformed),
		cmocka_unit_test(uppercase_checksum_is_malformed),
		cmocka_unit_test(characters_outside_base64url_are_malformed),
		cmocka_unit_test(hash_is_sha256_of_the_string),
		cmocka_unit_test(hash_hex_round_trip),
		cmocka_unit_test(hash_from_hex_refuses_other_spellings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
