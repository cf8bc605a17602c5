// The tenants file: parsing, every kind of mistake named by line, and authentication
// by token hash.
#include "service/tenants.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

std::string Line(absl::string_view kind, absl::string_view name, absl::string_view token,
                 absl::string_view rest = "") {
  return absl::StrCat(kind, " ", name, " token_sha256=", TokenHashHex(token), " ", rest, "\n");
}

TEST(TenantsTest, HashesAreSha256) {
  // The SHA-256 test vector of "abc" (FIPS 180-2).
  EXPECT_EQ(TokenHashHex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TenantsTest, ParsesTenantsQuotasAndOperatorsAndAuthenticatesByToken) {
  const std::string text = "# who may call\n" + Line("tenant", "acme", "acme-secret", "max_bytes=64GiB max_sequences=100 max_clients=7") +
                           "\n   \t\n" + Line("tenant", "globex", "globex-secret") +
                           Line("operator", "ops", "ops-secret") + "  # trailing comment\n";
  auto directory = TenantDirectory::Parse(text, "tenants.conf");
  ASSERT_TRUE(directory.ok()) << directory.status();
  ASSERT_EQ(directory->entries().size(), 3u);

  auto acme = directory->Authenticate("acme-secret");
  ASSERT_TRUE(acme.ok());
  EXPECT_EQ((*acme)->name, "acme");
  EXPECT_FALSE((*acme)->is_operator);
  EXPECT_EQ((*acme)->max_bytes, uint64_t{64} << 30);
  EXPECT_EQ((*acme)->max_sequences, 100u);
  EXPECT_EQ((*acme)->max_clients, 7u);
  auto globex = directory->Authenticate("globex-secret");
  ASSERT_TRUE(globex.ok());
  EXPECT_EQ((*globex)->max_bytes, 0u) << "no quota";
  auto ops = directory->Authenticate("ops-secret");
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE((*ops)->is_operator);

  for (absl::string_view wrong : {"", "acme-secre", "acme-secret ", "ACME-SECRET"}) {
    auto refused = directory->Authenticate(wrong);
    EXPECT_TRUE(absl::IsUnauthenticated(refused.status())) << wrong;
  }
  EXPECT_NE(directory->FindTenant("acme"), nullptr);
  EXPECT_EQ(directory->FindTenant("ops"), nullptr) << "operators are not tenants";
  EXPECT_EQ(directory->FindTenant("initech"), nullptr);
}

TEST(TenantsTest, MistakesAreNamedWithTheirLine) {
  const std::string good = Line("tenant", "acme", "a");
  const struct {
    std::string text;
    std::string expected;
  } cases[] = {
      {"", "names no tenant or operator"},
      {"# only a comment\n", "names no tenant or operator"},
      {good + "customer x token_sha256=00\n", "t:2: \"customer\" is neither tenant nor operator"},
      {"tenant acme\n", "t:1: expected: KIND NAME token_sha256=HEX"},
      {"tenant acme max_bytes=1GiB\n", "acme has no token_sha256"},
      {"tenant acme token_sha256=abc\n", "has 3 characters, not 64"},
      {"tenant acme token_sha256=" + std::string(64, 'G') + "\n", "not lowercase hex"},
      {Line("tenant", "acme", "a", "max_bytes=lots"), "t:1:"},
      {Line("tenant", "acme", "a", "max_sequences=-1"), "\"-1\" is not a count"},
      {Line("tenant", "acme", "a", "colour=blue"), "unknown key \"colour\" for tenant acme"},
      {Line("operator", "ops", "o", "max_bytes=1GiB"), "operators have no quotas"},
      {good + Line("tenant", "acme", "b"), "t:2: the name acme is given twice"},
      {good + Line("tenant", "globex", "a"), "t:2: globex has the token of acme"},
      {Line("tenant", std::string(64, 'n'), "a"), "must be 1 to 63 bytes"},
      {Line("tenant", "a=b", "a"), "without '='"},
  };
  for (const auto& c : cases) {
    auto parsed = TenantDirectory::Parse(c.text, "t");
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.expected)) << c.text;
  }
}

TEST(TenantsTest, AMissingFileIsNamed) {
  auto loaded = TenantDirectory::Load("/nonexistent/tenants.conf");
  EXPECT_TRUE(absl::IsNotFound(loaded.status()));
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("/nonexistent/tenants.conf"));
}

}  // namespace
}  // namespace sparsepool
