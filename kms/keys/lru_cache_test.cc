#include "kms/keys/lru_cache.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace clavis::kms {
namespace {

TEST(LruCacheTest, EvictsTheLeastRecentlyUsed) {
  LruCache<std::string, int> cache(2);
  cache.Put("a", std::make_shared<int>(1));
  cache.Put("b", std::make_shared<int>(2));
  ASSERT_NE(cache.Get("a"), nullptr);  // a is now the most recent
  cache.Put("c", std::make_shared<int>(3));
  EXPECT_EQ(cache.Get("b"), nullptr);
  EXPECT_EQ(*cache.Get("a"), 1);
  EXPECT_EQ(*cache.Get("c"), 3);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(LruCacheTest, EvictedValuesStayAliveWhileInUse) {
  LruCache<std::string, int> cache(1);
  cache.Put("a", std::make_shared<int>(1));
  auto held = cache.Get("a");
  cache.Put("b", std::make_shared<int>(2));
  EXPECT_EQ(cache.Get("a"), nullptr);
  EXPECT_EQ(*held, 1);
}

TEST(LruCacheTest, EraseAndEraseIf) {
  LruCache<std::string, int> cache(10);
  for (int i = 0; i < 5; ++i) cache.Put("p" + std::to_string(i), std::make_shared<int>(i));
  cache.Put("q", std::make_shared<int>(9));
  cache.Erase("p0");
  EXPECT_EQ(cache.Get("p0"), nullptr);
  cache.EraseIf([](const std::string& k) { return k[0] == 'p'; });
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_NE(cache.Get("q"), nullptr);
}

TEST(LruCacheTest, StaysBoundedUnderConcurrentUse) {
  LruCache<int, int> cache(100);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 5000; ++i) {
        cache.Put(t * 100000 + i, std::make_shared<int>(i));
        cache.Get(t * 100000 + i / 2);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.size(), 100u);
}

}  // namespace
}  // namespace clavis::kms
