#pragma once
// EventBus: asynchronous events (a job completed, a write threshold was
// crossed) fanned out to every subscriber, as QMP events are to every
// monitor. Subscribers are called on the publishing thread and must not
// block; the control socket queues what it receives.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace corfs {

struct Event {
  std::string name;     // "BLOCK_JOB_COMPLETED", ...
  nlohmann::json data;  // the event's "data" member
};

class EventBus {
 public:
  using Handler = std::function<void(const Event&)>;

  // Unsubscribes on destruction.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(EventBus* bus, uint64_t id) : bus_(bus), id_(id) {}
    Subscription(Subscription&& other) noexcept : bus_(std::exchange(other.bus_, nullptr)), id_(other.id_) {}
    Subscription& operator=(Subscription&& other) noexcept {
      reset();
      bus_ = std::exchange(other.bus_, nullptr);
      id_ = other.id_;
      return *this;
    }
    ~Subscription() { reset(); }
    void reset() {
      if (bus_ != nullptr) bus_->Unsubscribe(id_);
      bus_ = nullptr;
    }

   private:
    EventBus* bus_ = nullptr;
    uint64_t id_ = 0;
  };

  [[nodiscard]] Subscription Subscribe(Handler handler) {
    std::lock_guard lock(mutex_);
    uint64_t id = next_id_++;
    handlers_[id] = std::move(handler);
    return Subscription(this, id);
  }

  void Publish(const Event& event) {
    std::lock_guard lock(mutex_);
    for (auto& [id, handler] : handlers_) handler(event);
  }

 private:
  void Unsubscribe(uint64_t id) {
    std::lock_guard lock(mutex_);
    handlers_.erase(id);
  }

  std::mutex mutex_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Handler> handlers_;
};

}  // namespace corfs
