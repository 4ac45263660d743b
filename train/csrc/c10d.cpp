// A process group on libtorch's c10d (TCPStore rendezvous, ProcessGroupGloo or
// ProcessGroupNCCL): what DistributedDataParallel uses, behind the C interface of c10d.h.
//
// Besides the collectives the group keeps two counters per rank in the store, so that a rank
// whose collective fails can say which peer is at fault: "alive/R", bumped by a heartbeat
// thread every half second (it stops when a process is killed or paused), and "seq/R", the
// number of collectives R has entered (it lags on a rank that is stuck elsewhere).
#include "c10d.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Logging.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// nccl.cpp (or nccl_absent.cpp where the build has no NCCL).
c10::intrusive_ptr<c10d::Backend> cg_make_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                               int device_index, std::chrono::milliseconds timeout);
bool cg_nccl_built();

using namespace std::chrono_literals;

namespace {

constexpr auto kHeartbeat = 500ms;
// The backends' own timeouts are this much longer than the group's, so that cg_group::wait's
// deadline comes first and the failing rank diagnoses its peers (NCCL's watchdog would abort the
// process at its own timeout).
constexpr auto kBackendGrace = 60s;

char* dup(const std::string& s) {
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
}

std::string message_of(const std::exception& e) {
    if (auto c10 = dynamic_cast<const c10::Error*>(&e)) {
        return c10->what_without_backtrace();
    }
    return e.what();
}

std::string key(const char* what, int rank) { return std::string("cyclegan/") + what + "/" + std::to_string(rank); }

bool loopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

}  // namespace

struct cg_group {
    std::string addr;
    uint16_t port;
    int rank;
    int world;
    std::chrono::milliseconds timeout;
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::Backend> backend;
    int64_t seq = 0;
    // A collective timed out: the backend's threads may be stuck on the missing peer, so the
    // group is not torn down (joining them would hang the exit).
    bool abandoned = false;

    std::thread heartbeat;
    std::mutex mutex;
    std::condition_variable wake;
    bool stopping = false;

    void start_heartbeat() {
        auto beat_store = store->clone();
        beat_store->setTimeout(kHeartbeat * 4);
        heartbeat = std::thread([this, beat_store] {
            for (;;) {
                try {
                    beat_store->add(key("alive", rank), 1);
                } catch (const std::exception&) {
                    return;  // the store is gone: the next collective says so
                }
                std::unique_lock<std::mutex> lock(mutex);
                if (wake.wait_for(lock, kHeartbeat, [this] { return stopping; })) return;
            }
        });
    }

    void stop_heartbeat() {
        {
            std::lock_guard<std::mutex> lock(mutex);
            stopping = true;
        }
        wake.notify_all();
        if (heartbeat.joinable()) heartbeat.join();
    }

    // Counts the collective this rank enters, in the store.
    void enter() { seq = store->add(key("seq", rank), 1); }

    // Waits for the works to finish, within the group's timeout. Polling instead of Work::wait()
    // is what makes a dead or hung peer an error on NCCL too: there wait() only makes the
    // current CUDA stream wait (unless TORCH_NCCL_BLOCKING_WAIT), so the host would block later,
    // in some unrelated read, until PyTorch's watchdog kills the process without a word.
    void wait(std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (auto& w : works) {
            while (!w->isCompleted()) {
                if (std::chrono::steady_clock::now() > deadline) {
                    abandoned = true;
                    backend->abort();
                    throw std::runtime_error("the collective did not complete within " +
                                             std::to_string(timeout.count() / 1000) + " s");
                }
                std::this_thread::sleep_for(200us);
            }
            w->wait();  // raises the work's own error, if it failed
        }
    }
};

extern "C" {

cg_group* cg_group_new(const char* addr, uint16_t port, int rank, int world, int backend, int device_index,
                       int64_t timeout_ms, char** err) {
    auto g = new cg_group();
    g->addr = addr;
    g->port = port;
    g->rank = rank;
    g->world = world;
    g->timeout = std::chrono::milliseconds(timeout_ms);
    const std::string where = g->addr + ":" + std::to_string(port);
    // While the ranks meet, c10d logs each retry with a stack trace; its failure is reported
    // below in one sentence instead.
    struct QuietLogs {
        int saved = FLAGS_caffe2_log_level;
        QuietLogs() { FLAGS_caffe2_log_level = 3; }
        ~QuietLogs() { FLAGS_caffe2_log_level = saved; }
    } quiet;
    try {
        c10d::TCPStoreOptions opts;
        opts.port = port;
        opts.isServer = rank == 0;
        opts.numWorkers = world;
        opts.waitWorkers = true;
        opts.timeout = g->timeout;
        g->store = c10::make_intrusive<c10d::TCPStore>(g->addr, opts);
    } catch (const std::exception& e) {
        std::ostringstream m;
        if (rank == 0) {
            m << "rank 0 could not hold the rendezvous on " << where << " (MASTER_ADDR:MASTER_PORT), or not all "
              << world << " ranks joined within " << timeout_ms / 1000 << " s: " << message_of(e);
        } else {
            m << "rank " << rank << " could not reach the rendezvous at " << where << " (MASTER_ADDR:MASTER_PORT) within "
              << timeout_ms / 1000 << " s; is rank 0 running, and is MASTER_ADDR its address? " << message_of(e);
        }
        *err = dup(m.str());
        delete g;
        return nullptr;
    }
    try {
        g->store->add(key("alive", rank), 1);
        g->store->add(key("seq", rank), 0);
        if (backend == CG_NCCL) {
            g->backend = cg_make_nccl(g->store, rank, world, device_index, g->timeout + kBackendGrace);
        } else {
            auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout + kBackendGrace);
            const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
            if (ifname && *ifname) {
                opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
            } else if (loopback(g->addr)) {
                opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
            } else {
                opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
            }
            g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, world, opts);
        }
    } catch (const std::exception& e) {
        *err = dup(std::string("rank ") + std::to_string(rank) + ": the " + (backend == CG_NCCL ? "NCCL" : "Gloo") +
                   " group of " + std::to_string(world) + " ranks did not form: " + message_of(e));
        delete g;
        return nullptr;
    }
    g->start_heartbeat();
    return g;
}

void cg_group_free(cg_group* g) {
    if (!g) return;
    g->stop_heartbeat();
    if (g->abandoned) (void)g->backend.release();
    delete g;
}

int cg_average(cg_group* g, void* const* tensors, size_t n, size_t bucket_bytes, char** err) {
    try {
        at::NoGradGuard no_grad;
        std::vector<std::vector<at::Tensor>> buckets;
        size_t bytes = bucket_bytes;
        for (size_t i = 0; i < n; i++) {
            const at::Tensor& t = *static_cast<at::Tensor*>(tensors[i]);
            size_t size = t.numel() * t.element_size();
            bool fits = !buckets.empty() && bytes + size <= bucket_bytes &&
                        buckets.back().front().scalar_type() == t.scalar_type() &&
                        buckets.back().front().device() == t.device();
            if (!fits) {
                buckets.emplace_back();
                bytes = 0;
            }
            buckets.back().push_back(t);
            bytes += size;
        }
        std::vector<at::Tensor> flats;
        std::vector<c10::intrusive_ptr<c10d::Work>> works;
        g->enter();
        for (auto& bucket : buckets) {
            std::vector<at::Tensor> views;
            for (auto& t : bucket) views.push_back(t.reshape({-1}));
            std::vector<at::Tensor> flat{at::cat(views)};
            works.push_back(g->backend->allreduce(flat));
            flats.push_back(flat[0]);
        }
        g->wait(works);
        for (size_t b = 0; b < buckets.size(); b++) {
            flats[b].div_(g->world);
            int64_t offset = 0;
            for (auto& t : buckets[b]) {
                t.copy_(flats[b].narrow(0, offset, t.numel()).view_as(t));
                offset += t.numel();
            }
        }
        return 0;
    } catch (const std::exception& e) {
        *err = dup(message_of(e));
        return 1;
    }
}

int cg_broadcast(cg_group* g, void* const* tensors, size_t n, char** err) {
    try {
        at::NoGradGuard no_grad;
        std::vector<c10::intrusive_ptr<c10d::Work>> works;
        std::vector<std::vector<at::Tensor>> args;
        g->enter();
        for (size_t i = 0; i < n; i++) {
            const at::Tensor& t = *static_cast<at::Tensor*>(tensors[i]);
            args.push_back({t.contiguous()});
            c10d::BroadcastOptions opts;
            opts.rootRank = 0;
            works.push_back(g->backend->broadcast(args.back(), opts));
        }
        g->wait(works);
        for (size_t i = 0; i < n; i++) {
            at::Tensor& t = *static_cast<at::Tensor*>(tensors[i]);
            if (!args[i][0].is_same(t)) t.copy_(args[i][0]);
        }
        return 0;
    } catch (const std::exception& e) {
        *err = dup(message_of(e));
        return 1;
    }
}

int cg_barrier(cg_group* g, char** err) {
    try {
        g->enter();
        std::vector<c10::intrusive_ptr<c10d::Work>> works{g->backend->barrier()};
        g->wait(works);
        return 0;
    } catch (const std::exception& e) {
        *err = dup(message_of(e));
        return 1;
    }
}

int cg_store_set(cg_group* g, const char* k, const char* value, size_t len, char** err) {
    try {
        g->store->set(k, std::vector<uint8_t>(value, value + len));
        return 0;
    } catch (const std::exception& e) {
        *err = dup(message_of(e));
        return 1;
    }
}

int cg_store_get(cg_group* g, const char* k, char** value, size_t* len, char** err) {
    try {
        auto v = g->store->get(k);
        *value = static_cast<char*>(std::malloc(v.size() + 1));
        std::memcpy(*value, v.data(), v.size());
        *len = v.size();
        return 0;
    } catch (const std::exception& e) {
        *err = dup(message_of(e));
        return 1;
    }
}

void cg_mark_failed(cg_group* g, const char* message) {
    try {
        g->store->set(key("failed", g->rank), std::string(message));
    } catch (const std::exception&) {
        // The store is gone too: the others find that out themselves.
    }
}

char* cg_diagnose(cg_group* g) {
    std::ostringstream out;
    try {
        auto s = g->store->clone();
        s->setTimeout(3s);
        std::vector<int64_t> alive(g->world), seq(g->world);
        for (int r = 0; r < g->world; r++) {
            alive[r] = s->add(key("alive", r), 0);
            seq[r] = s->add(key("seq", r), 0);
        }
        std::this_thread::sleep_for(kHeartbeat * 4);
        std::vector<std::string> findings;
        for (int r = 0; r < g->world; r++) {
            if (r == g->rank) continue;
            std::ostringstream f;
            if (s->check({key("failed", r)})) {
                auto m = s->get(key("failed", r));
                f << "rank " << r << " failed: " << std::string(m.begin(), m.end());
            } else if (s->add(key("alive", r), 0) == alive[r]) {
                f << "rank " << r << " stopped (no heartbeat for " << (kHeartbeat * 4).count() / 1000.0
                  << " s: killed, crashed or paused)";
            } else if (seq[r] < g->seq) {
                f << "rank " << r << " is alive but has not reached this collective (it entered " << seq[r]
                  << ", this rank " << g->seq << "): it is stuck or much slower";
            } else {
                continue;
            }
            findings.push_back(f.str());
        }
        if (findings.empty()) {
            out << "no other rank reports a problem";
        }
        for (size_t i = 0; i < findings.size(); i++) out << (i ? "; " : "") << findings[i];
    } catch (const std::exception&) {
        out << "rank 0 stopped (its rendezvous store at " << g->addr << ":" << g->port << " does not answer)";
    }
    return dup(out.str());
}

int cg_has_nccl(void) { return cg_nccl_built() ? 1 : 0; }

void cg_free(void* p) { std::free(p); }

}  // extern "C"
