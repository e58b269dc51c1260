// A Broker that hands every call to another one: test doubles derive from it and override only
// the calls they change (count, flag), keeping the real broker's behaviour for the rest.
#pragma once

#include <chrono>
#include <vector>

#include "broker/broker.hpp"

namespace fetchd::test {

class ForwardingBroker : public Broker {
 public:
  explicit ForwardingBroker(Broker& inner) : inner_(inner) {}

  Result<void> enqueue(const Run& run) override { return inner_.enqueue(run); }
  Result<std::vector<Claim>> claim(std::size_t max, std::chrono::milliseconds wait,
                                   std::chrono::milliseconds lease) override {
    return inner_.claim(max, wait, lease);
  }
  Result<void> complete(const Claim& claim) override { return inner_.complete(claim); }
  std::vector<Result<void>> complete_all(const std::vector<Claim>& claims) override {
    return inner_.complete_all(claims);
  }
  Result<void> release(const Claim& claim) override { return inner_.release(claim); }
  Result<void> extend(const Claim& claim, std::chrono::milliseconds lease) override {
    return inner_.extend(claim, lease);
  }
  std::vector<Result<void>> extend_all(const std::vector<Claim>& claims,
                                       std::chrono::milliseconds lease) override {
    return inner_.extend_all(claims, lease);
  }
  Result<std::size_t> reclaim_expired(TimePoint now) override {
    return inner_.reclaim_expired(now);
  }
  Result<std::vector<TaskId>> holding(const std::vector<TaskId>& tasks) override {
    return inner_.holding(tasks);
  }
  std::size_t depth() const override { return inner_.depth(); }
  Result<void> ping() override { return inner_.ping(); }
  void close() override { inner_.close(); }

 private:
  Broker& inner_;
};

}  // namespace fetchd::test
