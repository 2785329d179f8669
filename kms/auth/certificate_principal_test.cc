#include "kms/auth/certificate_principal.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

void ExpectRefused(const std::vector<std::string>& uris, const std::string& cn,
                   absl::string_view why) {
  auto id = IdentityFromCertificate(uris, cn);
  ASSERT_FALSE(id.ok()) << why;
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(id.status().message()), HasSubstr(std::string(why)));
}

TEST(CertificatePrincipalTest, PrincipalAndGroupsFromUris) {
  auto id = IdentityFromCertificate(
      {"spiffe://acme.example/ns/prod/sa/billing", "clavis:tenants/acme/principals/billing-app",
       "clavis-group:tenants/acme/groups/readers", "clavis-group:tenants/acme/groups/ops",
       "clavis-group:tenants/acme/groups/readers"},
      "ignored when a clavis: URI is present");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->principal, "tenants/acme/principals/billing-app");
  EXPECT_EQ(id->tenant, "acme");
  EXPECT_THAT(id->groups, ElementsAre("tenants/acme/groups/readers", "tenants/acme/groups/ops"));
  EXPECT_EQ(id->method, AuthMethod::kMutualTls);
  EXPECT_EQ(id->token_id, "");
}

TEST(CertificatePrincipalTest, UriWinsOverCommonName) {
  auto id =
      IdentityFromCertificate({"clavis:tenants/acme/principals/a"}, "tenants/acme/principals/b");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->principal, "tenants/acme/principals/a");
}

TEST(CertificatePrincipalTest, CommonNameWhenNoPrincipalUri) {
  auto id = IdentityFromCertificate({"spiffe://x/y", "clavis-group:tenants/acme/groups/readers"},
                                    "tenants/acme/principals/cli");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->principal, "tenants/acme/principals/cli");
  EXPECT_EQ(id->tenant, "acme");
  EXPECT_THAT(id->groups, ElementsAre("tenants/acme/groups/readers"));

  auto bare = IdentityFromCertificate({}, "tenants/acme/principals/cli");
  ASSERT_TRUE(bare.ok());
  EXPECT_THAT(bare->groups, IsEmpty());
}

TEST(CertificatePrincipalTest, NoPrincipalIsRefused) {
  ExpectRefused({}, "", "client certificate names no Clavis principal");
  ExpectRefused({"spiffe://acme/sa/x"}, "billing-app", "names no Clavis principal");
  ExpectRefused({}, "tenants/acme/groups/readers", "names no Clavis principal");
  // Scheme matching is exact.
  ExpectRefused({"CLAVIS:tenants/acme/principals/a", "clavis-principal:tenants/acme/principals/a"},
                "", "names no Clavis principal");
}

TEST(CertificatePrincipalTest, TwoPrincipalsAreRefused) {
  ExpectRefused({"clavis:tenants/acme/principals/a", "clavis:tenants/acme/principals/b"}, "",
                "names two principals");
  // The same one twice is one principal.
  auto id = IdentityFromCertificate(
      {"clavis:tenants/acme/principals/a", "clavis:tenants/acme/principals/a"}, "");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->principal, "tenants/acme/principals/a");
}

TEST(CertificatePrincipalTest, MalformedPrincipalIsRefused) {
  ExpectRefused({"clavis:"}, "", "malformed principal");
  ExpectRefused({"clavis:tenants/acme/groups/readers"}, "", "malformed principal");
  ExpectRefused({"clavis:tenants/ACME/principals/a"}, "", "malformed principal");
  ExpectRefused({"clavis:tenants/acme/principals/a/extra"}, "", "malformed principal");
  ExpectRefused({"clavis:tenants/acme/principals/-a"}, "", "malformed principal");
}

TEST(CertificatePrincipalTest, BadGroupsAreRefused) {
  ExpectRefused({"clavis:tenants/acme/principals/a", "clavis-group:tenants/evil/groups/admins"}, "",
                "group \"tenants/evil/groups/admins\" is of another tenant than principal");
  ExpectRefused({"clavis-group:tenants/evil/groups/admins"}, "tenants/acme/principals/a",
                "is of another tenant");
  ExpectRefused({"clavis:tenants/acme/principals/a", "clavis-group:tenants/acme/principals/b"}, "",
                "malformed group");
  ExpectRefused({"clavis:tenants/acme/principals/a", "clavis-group:"}, "", "malformed group");
  ExpectRefused({"clavis:tenants/acme/principals/a", "clavis-group:tenants/acme/groups/a b"}, "",
                "malformed group");
}

}  // namespace
}  // namespace clavis::kms::auth
