#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "storage/store.h"

// The contract suite every storage::Store backend passes: one set of value-parameterized
// GoogleTest cases that check each promise of store.h against answers computed in plain C++
// from deterministic (seeded) data.
//
// Covered: the round trip of every LlmCall and Span field (content only through GetCall);
// rewrites by key, replays and twins; every CallFilter field and combinations; every sort
// in both directions paged at several sizes (ties broken by request id, exact doubles in
// cost cursors, cursors of another query refused); Aggregate for every bucket and grouping
// (exact percentiles, errors, token and cost sums, unpriced, the row limit); Top by cost
// and tokens (limits, ties, empty groups); ListTraces summaries, filters and paging;
// GetTrace order; ApplyRetention per table; Stats; validation errors; 1 ns timeouts
// (DEADLINE_EXCEEDED or the exact answer); concurrent writers and readers.
//
// Use: compile store_contract.cc straight into the backend's test binary (list
// ${PROJECT_SOURCE_DIR}/src/storage/store_contract.cc in its TEST_SRCS; it must not go
// through a static library, whose unreferenced test registrations the linker would drop),
// then instantiate the suite with one or more factories (with storage::StoreContract visible
// unqualified, e.g. through `using storage::StoreContract;`):
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract,
//                            ::testing::Values(storage::StoreFactory{"file", [] {
//                              return MakeFreshSqliteStore();
//                            }}),
//                            storage::StoreFactoryName);
//
// A backend that needs a server which may be absent (ClickHouse) instantiates with
// ::testing::ValuesIn(list) and an empty list when there is no server, plus
// GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreContract).
namespace llmscope::storage {

// Makes the store one contract test runs against.
struct StoreFactory {
  // Test-name suffix: letters, digits and '_' only (GoogleTest's rule for parameter names).
  std::string name;
  // Returns a fresh, EMPTY store that no other test uses (a new file, a new database), or
  // nullptr when it cannot, which fails the test. Called once per test, on the test's
  // thread; the store is destroyed at the end of that test. Each store is used by one test
  // only, so a factory may reuse names once the previous store is gone.
  std::function<std::unique_ptr<Store>()> make;
};

// For GoogleTest: prints the factory's name.
void PrintTo(const StoreFactory& factory, std::ostream* os);
// The fourth argument of INSTANTIATE_TEST_SUITE_P: names each instance after its factory.
std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info);

// Readable failure messages for the result rows (defined in store_contract.cc).
void PrintTo(const AggregateRow& row, std::ostream* os);
void PrintTo(const TopRow& row, std::ostream* os);
void PrintTo(const TraceSummary& summary, std::ostream* os);

// The fixture: store() is a fresh empty store from the factory.
// Thread-safety: as any GoogleTest fixture, owned by the test's thread; the tests that
// exercise concurrency share store() between threads they start and join themselves.
class StoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store& store() { return *store_; }

 private:
  std::unique_ptr<Store> store_;
};

}  // namespace llmscope::storage
