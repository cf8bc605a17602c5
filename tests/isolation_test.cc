// The attack suite: what one client could do to another's sequences, tried against a
// real daemon. Each test here failed on the code before the fix it names.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/entry_pattern.h"
#include "client/client_internal.h"
#include "client/sparsepool_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tenants.h"
#include "tests/child_process.h"
#include "tests/client_support.h"
#include "tests/daemon_process.h"
#include "tests/ucx_loopback.h"

namespace sparsepool {
namespace {

using ::sparsepool::testing::ConnectTo;

using ::testing::HasSubstr;

constexpr uint32_t kEntry = 656;

SequenceSpec OneLayer(uint64_t tokens) {
  SequenceSpec spec;
  spec.layers = 1;
  spec.entry_bytes = kEntry;
  spec.tokens = tokens;
  spec.tenant = "t";
  return spec;
}

absl::Status WritePattern(Client& client, SequenceId id, uint64_t tokens, uint64_t seed) {
  std::vector<std::byte> entries(tokens * kEntry);
  for (uint64_t t = 0; t < tokens; ++t) {
    bench::FillEntry(seed, id, 0, t, absl::MakeSpan(entries).subspan(t * kEntry, kEntry));
  }
  return client.WriteEntries(id, 0, 0, entries);
}

// Ids were rebuilt from the records at start-up, so the id of a released sequence
// whose memory went to another came back after a restart; a client still holding the
// old layout then fetched the new owner's entries with status OK.
TEST(IsolationTest, AStaleLayoutNeverReadsASequenceCreatedAfterARestart) {
  testing::DaemonOptions options;
  options.region_size = "64MiB";
  options.same_address_on_restart = true;
  options.extra_args = {"--reuse_grace=0s"};
  testing::DaemonProcess daemon("isolation-restart", options);
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  auto owner = ConnectTo(daemon.address());
  auto holder = ConnectTo(daemon.address());  // another worker, keeping its layout
  ASSERT_TRUE(owner && holder);

  const SequenceId kept = *owner->CreateSequence(OneLayer(20000));
  const SequenceId doomed = *owner->CreateSequence(OneLayer(40000));
  ASSERT_TRUE(WritePattern(*owner, doomed, 40000, 1).ok());
  ASSERT_TRUE(internal::Layout(*holder, doomed).ok());
  ASSERT_TRUE(owner->ReleaseSequence(doomed).ok());
  // The kept sequence grows into the released memory: the doomed one is evicted, and it
  // held the highest id.
  ASSERT_TRUE(owner->ExtendSequence(kept, 60000).ok());
  ASSERT_EQ(daemon.Stop(), 0) << daemon.Log();
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();

  auto successor = owner->CreateSequence(OneLayer(30000));
  ASSERT_TRUE(successor.ok()) << successor.status();
  EXPECT_GT(*successor, doomed) << "an evicted sequence's id was issued again";
  ASSERT_TRUE(WritePattern(*owner, *successor, 30000, 2).ok());
  std::vector<int32_t> tokens(2048);
  std::iota(tokens.begin(), tokens.end(), 0);
  std::vector<std::byte> out(tokens.size() * kEntry);
  const absl::Status stale = holder->FetchTopK(0, {doomed}, tokens, absl::MakeSpan(out));
  EXPECT_TRUE(absl::IsNotFound(stale)) << stale;
}

// ---- Tenants (sparsepoold --tenants): every call authenticated, acting within its
// tenant. Before, any client could release, adopt, grow or read any sequence, list
// every tenant's, and reuse another's client id.

std::string TestDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  ASSERT_TRUE(file.good()) << path;
}

// The tenant is left for the daemon to fill in: the caller's.
SequenceSpec OfTheCaller(uint64_t tokens) {
  SequenceSpec spec = OneLayer(tokens);
  spec.tenant.clear();
  return spec;
}

class TenantIsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tenants = TestDir() + "/tenants.conf";
    ASSERT_NO_FATAL_FAILURE(WriteFile(
        tenants, absl::StrCat("# the test's tenants\n", "tenant acme token_sha256=", TokenHashHex(kAcme), "\n",
                              "tenant globex token_sha256=", TokenHashHex(kGlobex), "\n",
                              "operator ops token_sha256=", TokenHashHex(kOps), "\n")));
    ASSERT_NO_FATAL_FAILURE(WriteFile(operator_token_, absl::StrCat(kOps, "\n")));
    testing::DaemonOptions options;
    options.extra_args = extra_args_;
    options.extra_args.push_back("--tenants=" + tenants);
    daemon_ = std::make_unique<testing::DaemonProcess>(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), options);
    ASSERT_TRUE(daemon_->Start().ok()) << daemon_->Log();
  }

  absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& token, const std::string& client_id = "") {
    ClientOptions options;
    options.address = daemon_->address();
    options.rpc_timeout = absl::Seconds(5);
    options.token = token;
    options.client_id = client_id;
    return Client::Connect(options);
  }

  testing::CommandResult Ctl(std::vector<std::string> words, const std::string& token_file) {
    std::vector<std::string> argv = {"tools/sparsepoolctl", "--address=" + daemon_->address()};
    if (!token_file.empty()) argv.push_back("--token_file=" + token_file);
    argv.insert(argv.end(), words.begin(), words.end());
    return testing::RunCommand(argv);
  }

  static constexpr char kAcme[] = "acme-0123456789abcdef";
  static constexpr char kGlobex[] = "globex-fedcba9876543210";
  static constexpr char kOps[] = "ops-secret-for-the-operator";
  const std::string operator_token_ = TestDir() + "/ops.token";
  std::vector<std::string> extra_args_;  // for the daemon, besides --tenants
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

TEST_F(TenantIsolationTest, ACallWithoutAKnownTokenIsRefused) {
  for (const std::string token : {"", "acme-0123456789abcdeF", "not a token at all"}) {
    auto client = Connect(token);
    ASSERT_FALSE(client.ok()) << "token \"" << token << "\"";
    EXPECT_TRUE(absl::IsUnauthenticated(client.status())) << client.status();
  }
  auto refused = Ctl({"list"}, "");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("every call needs a token"));
  auto health = Ctl({"health"}, "");
  EXPECT_EQ(health.exit_code, 0) << "Health answers probes without a token: " << health.output;
}

TEST_F(TenantIsolationTest, ATenantActsOnlyOnItsOwnSequences) {
  auto acme = Connect(kAcme);
  auto globex = Connect(kGlobex);
  ASSERT_TRUE(acme.ok() && globex.ok());
  const SequenceId id = *(*acme)->CreateSequence(OfTheCaller(300));
  ASSERT_TRUE(WritePattern(**acme, id, 300, 7).ok());
  EXPECT_EQ((*acme)->Info(id)->tenant, "acme") << "the daemon names the tenant, not the request";

  const std::string denied = absl::StrCat("sequence ", id, " belongs to another tenant");
  for (absl::Status s : {internal::Layout(**globex, id).status(), (*globex)->ExtendSequence(id, 400),
                         (*globex)->ReleaseSequence(id), (*globex)->AdoptSequence(id),
                         (*globex)->Info(id).status()}) {
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(denied));
  }
  std::vector<int32_t> top = {0, 5, 299};
  std::vector<std::byte> out(top.size() * kEntry);
  EXPECT_TRUE(absl::IsPermissionDenied((*globex)->FetchTopK(0, {id}, top, absl::MakeSpan(out))));
  std::vector<std::byte> entry(kEntry);
  EXPECT_TRUE(absl::IsPermissionDenied((*globex)->WriteEntries(id, 0, 0, entry)));
  SequenceSpec foreign = OfTheCaller(10);
  foreign.tenant = "acme";
  auto forged = (*globex)->CreateSequence(foreign);
  EXPECT_TRUE(absl::IsPermissionDenied(forged.status())) << forged.status();
  EXPECT_THAT(std::string(forged.status().message()), HasSubstr("may not create sequences of tenant acme"));

  // Nothing globex tried touched it: acme still reads its entries, and hands the
  // sequence to another of its workers (prefill to decode) as before.
  ASSERT_TRUE((*acme)->FetchTopK(0, {id}, top, absl::MakeSpan(out)).ok());
  std::vector<std::byte> expected(kEntry);
  bench::FillEntry(7, id, 0, 299, absl::MakeSpan(expected));
  EXPECT_EQ(0, std::memcmp(out.data() + 2 * kEntry, expected.data(), kEntry));
  auto decode = Connect(kAcme);
  ASSERT_TRUE(decode.ok());
  EXPECT_TRUE((*decode)->AdoptSequence(id).ok());
}

TEST_F(TenantIsolationTest, AClientIdBelongsToTheTenantThatHoldsItsLease) {
  auto acme = Connect(kAcme, "worker-1");
  ASSERT_TRUE(acme.ok()) << acme.status();
  auto impostor = Connect(kGlobex, "worker-1");
  ASSERT_FALSE(impostor.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(impostor.status())) << impostor.status();
  EXPECT_THAT(std::string(impostor.status().message()),
              HasSubstr("client id \"worker-1\" holds a lease of another tenant"));
  EXPECT_TRUE(Connect(kAcme, "worker-1").ok()) << "the same tenant may use its id from another process";
}

TEST_F(TenantIsolationTest, ListingAndStatsShowATenantOnlyItsOwnAndOperatorsInspectEveryone) {
  auto acme = Connect(kAcme);
  auto globex = Connect(kGlobex);
  ASSERT_TRUE(acme.ok() && globex.ok());
  const SequenceId a = *(*acme)->CreateSequence(OfTheCaller(64));
  const SequenceId g = *(*globex)->CreateSequence(OfTheCaller(64));

  const std::string globex_token = TestDir() + "/globex.token";
  ASSERT_NO_FATAL_FAILURE(WriteFile(globex_token, kGlobex));
  auto own = Ctl({"list"}, globex_token);
  EXPECT_EQ(own.exit_code, 0) << own.output;
  EXPECT_THAT(own.output, HasSubstr("1 sequence(s)"));
  EXPECT_THAT(own.output, HasSubstr("globex"));
  EXPECT_THAT(own.output, ::testing::Not(HasSubstr("acme")));
  auto other = Ctl({"list", "--tenant=acme"}, globex_token);
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_THAT(other.output, HasSubstr("tenant globex may not list the sequences of tenant acme"));
  auto stats = Ctl({"stats"}, globex_token);
  EXPECT_EQ(stats.exit_code, 1);
  EXPECT_THAT(stats.output, HasSubstr("PERMISSION_DENIED"));

  auto everyone = Ctl({"list"}, operator_token_);
  EXPECT_EQ(everyone.exit_code, 0) << everyone.output;
  EXPECT_THAT(everyone.output, HasSubstr("2 sequence(s)"));
  EXPECT_EQ(Ctl({"stats"}, operator_token_).exit_code, 0);
  auto released = Ctl({"release", std::to_string(a)}, operator_token_);
  EXPECT_EQ(released.exit_code, 0) << released.output;
  EXPECT_TRUE(absl::IsNotFound((*acme)->Info(a).status()));
  EXPECT_TRUE((*globex)->Info(g).ok());

  // An operator creates nothing and holds no lease.
  auto op = Connect(kOps);
  ASSERT_FALSE(op.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(op.status())) << op.status();
  EXPECT_THAT(std::string(op.status().message()), HasSubstr("operator ops may not call KeepAlive"));
}

// ---- TLS: tokens and entries' addresses never cross a network in the clear. The
// certificates are made with openssl for each test.

// Runs openssl, failing the test with its output when it fails.
void OpenSsl(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  const testing::CommandResult result = testing::RunCommand(args);
  ASSERT_EQ(result.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << result.output;
}

// A CA, and certificates it signed for the daemon (127.0.0.1, localhost) and a client.
struct TestPki {
  std::string dir, ca, server_cert, server_key, client_cert, client_key, stranger_ca;
};

void MakePki(TestPki& pki) {
  pki.dir = TestDir();
  const std::string& d = pki.dir;
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
  const auto self_signed = [&](const std::string& name) {
    std::vector<std::string> args = {"req", "-x509"};
    args.insert(args.end(), ec.begin(), ec.end());
    args.insert(args.end(), {"-keyout", d + "/" + name + ".key", "-out", d + "/" + name + ".pem", "-days", "1",
                             "-subj", "/CN=" + name});
    OpenSsl(args);
  };
  ASSERT_NO_FATAL_FAILURE(self_signed("test-ca"));
  ASSERT_NO_FATAL_FAILURE(self_signed("stranger-ca"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(d + "/server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(d + "/client.ext", "extendedKeyUsage=clientAuth\n"));
  for (const std::string name : {"server", "client"}) {
    std::vector<std::string> request = {"req"};
    request.insert(request.end(), ec.begin(), ec.end());
    request.insert(request.end(), {"-keyout", d + "/" + name + ".key", "-out", d + "/" + name + ".csr", "-subj",
                                   "/CN=sparsepool-test-" + name});
    ASSERT_NO_FATAL_FAILURE(OpenSsl(request));
    ASSERT_NO_FATAL_FAILURE(OpenSsl({"x509", "-req", "-in", d + "/" + name + ".csr", "-CA", d + "/test-ca.pem",
                                     "-CAkey", d + "/test-ca.key", "-CAcreateserial", "-out", d + "/" + name + ".pem",
                                     "-days", "1", "-extfile", d + "/" + name + ".ext"}));
  }
  pki.ca = d + "/test-ca.pem";
  pki.stranger_ca = d + "/stranger-ca.pem";
  pki.server_cert = d + "/server.pem";
  pki.server_key = d + "/server.key";
  pki.client_cert = d + "/client.pem";
  pki.client_key = d + "/client.key";
}

// ---- Memory isolation (issue 10, item 5): a region dedicated to a tenant holds only
// its sequences, only its workers' user may map the file, and its UCX worker runs in a
// process that maps only that region. Before, every tenant's sequences shared every
// region, every client mapped all of it, and one UCX worker in the daemon answered
// reads and writes of any address in the daemon.
class DedicatedRegionTest : public TenantIsolationTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: the daemon gives the region to another user";
    testing::UseUcxOnLoopback();  // read by UCX in the daemon's worker processes and here
    setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 1);
    acme_region_ = absl::StrCat("/dev/shm/sparsepool-isolation-acme-", getpid());
    unlink(acme_region_.c_str());
    extra_args_ = {absl::StrCat("--region=shm:", acme_region_, ":64MiB,tenant=acme,owner=65534"), "--ucx=true"};
    TenantIsolationTest::SetUp();
  }
  void TearDown() override {
    daemon_.reset();
    if (!acme_region_.empty()) unlink(acme_region_.c_str());
  }

  absl::StatusOr<std::unique_ptr<Client>> ConnectUcx(const std::string& token) {
    ClientOptions options;
    options.address = daemon_->address();
    options.rpc_timeout = absl::Seconds(5);
    options.token = token;
    options.transport = "ucx";
    return Client::Connect(options);
  }

  std::string acme_region_;
};

TEST_F(DedicatedRegionTest, ATenantsSequencesLiveInARegionOnlyItsWorkersMayMap) {
  auto acme = ConnectUcx(kAcme);
  auto globex = ConnectUcx(kGlobex);
  ASSERT_TRUE(acme.ok() && globex.ok()) << acme.status() << globex.status();
  const SequenceId mine = *(*acme)->CreateSequence(OfTheCaller(300));
  const SequenceId theirs = *(*globex)->CreateSequence(OfTheCaller(300));
  auto acme_layout = internal::Layout(**acme, mine);
  auto globex_layout = internal::Layout(**globex, theirs);
  ASSERT_TRUE(acme_layout.ok() && globex_layout.ok());
  EXPECT_EQ(acme_layout->region.path, acme_region_);
  EXPECT_NE(globex_layout->region.path, acme_region_) << "globex lives in the shared region";

  struct stat st;
  ASSERT_EQ(stat(acme_region_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u) << "the region belongs to acme's workers' user";
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "and to no one else";

  // Each domain has its own UCX worker, in a process of its own.
  EXPECT_FALSE(acme_layout->region.ucx_worker_address.empty());
  EXPECT_NE(acme_layout->region.ucx_worker_address, globex_layout->region.ucx_worker_address);
  EXPECT_THAT(daemon_->Log(), HasSubstr("data-plane domain 1: region(s) 1 (dedicated to acme)"));

  // The data plane works through it: acme writes and reads its entries over UCX.
  ASSERT_TRUE(WritePattern(**acme, mine, 300, 11).ok());
  std::vector<int32_t> top = {0, 150, 299};
  std::vector<std::byte> out(top.size() * kEntry);
  ASSERT_TRUE((*acme)->FetchTopK(0, {mine}, top, absl::MakeSpan(out)).ok());
  std::vector<std::byte> expected(kEntry);
  bench::FillEntry(11, mine, 0, 150, absl::MakeSpan(expected));
  EXPECT_EQ(0, std::memcmp(out.data() + kEntry, expected.data(), kEntry));
  ASSERT_TRUE(WritePattern(**globex, theirs, 300, 12).ok());
  ASSERT_TRUE((*globex)->FetchTopK(0, {theirs}, top, absl::MakeSpan(out)).ok());
  bench::FillEntry(12, theirs, 0, 299, absl::MakeSpan(expected));
  EXPECT_EQ(0, std::memcmp(out.data() + 2 * kEntry, expected.data(), kEntry));
}

class TlsTest : public TenantIsolationTest {
 protected:
  void SetUp() override {}

  void StartWith(std::vector<std::string> tls_args) {
    ASSERT_NO_FATAL_FAILURE(MakePki(pki_));
    tls_args.push_back("--tls_cert=" + pki_.server_cert);
    tls_args.push_back("--tls_key=" + pki_.server_key);
    extra_args_ = std::move(tls_args);
    ASSERT_NO_FATAL_FAILURE(TenantIsolationTest::SetUp());
  }

  absl::StatusOr<std::unique_ptr<Client>> ConnectTls(const std::string& roots, bool with_certificate) {
    ClientOptions options;
    options.address = daemon_->address();
    options.rpc_timeout = absl::Seconds(3);
    options.token = kAcme;
    options.tls_root_certs = roots;
    if (with_certificate) {
      options.tls_cert = pki_.client_cert;
      options.tls_key = pki_.client_key;
    }
    return Client::Connect(options);
  }

  TestPki pki_;
};

TEST_F(TlsTest, TokensTravelOnlyOverTlsToTheDaemonItsCaSigned) {
  ASSERT_NO_FATAL_FAILURE(StartWith({}));
  auto client = ConnectTls(pki_.ca, false);
  ASSERT_TRUE(client.ok()) << client.status() << daemon_->Log();
  const SequenceId id = *(*client)->CreateSequence(OfTheCaller(128));
  ASSERT_TRUE(WritePattern(**client, id, 128, 3).ok());
  std::vector<int32_t> top = {127};
  std::vector<std::byte> out(kEntry), expected(kEntry);
  ASSERT_TRUE((*client)->FetchTopK(0, {id}, top, absl::MakeSpan(out)).ok());
  bench::FillEntry(3, id, 0, 127, absl::MakeSpan(expected));
  EXPECT_EQ(out, expected);

  EXPECT_FALSE(ConnectTls("", false).ok()) << "a plaintext client reached a TLS daemon";
  EXPECT_FALSE(ConnectTls(pki_.stranger_ca, false).ok()) << "a client trusted a daemon its CA did not sign";
  auto missing = ConnectTls(pki_.dir + "/no-such-ca.pem", false);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  auto ops = Ctl({"--tls_root_certs=" + pki_.ca, "list"}, operator_token_);
  EXPECT_EQ(ops.exit_code, 0) << ops.output;
  EXPECT_THAT(ops.output, HasSubstr("1 sequence(s)"));
}

TEST_F(TlsTest, ClientCertificatesAreRequiredWhenTheDaemonAsksForThem) {
  ASSERT_NO_FATAL_FAILURE(StartWith({"--tls_client_ca=" + TestDir() + "/test-ca.pem"}));
  EXPECT_FALSE(ConnectTls(pki_.ca, false).ok()) << "a client without a certificate got in";
  auto client = ConnectTls(pki_.ca, true);
  ASSERT_TRUE(client.ok()) << client.status() << daemon_->Log();
  EXPECT_TRUE((*client)->CreateSequence(OfTheCaller(64)).ok());
}

}  // namespace
}  // namespace sparsepool
