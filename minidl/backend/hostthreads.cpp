// minidl's own threads for the host kernels' parallel loops and products (loaded by hostkernel.threadPool before
// any kernel).
//
// The kernels do not use an OpenMP runtime: every OpenMP runtime in a process answers to one soname
// (libgomp.so.1), so a kernel bound to whichever copy was loaded first, and PyTorch's wheel brings its own, read
// at `import torch`, before minidl could ask for passive waits. Its idle threads then spun and took the cores
// from NumPy's BLAS threads, and minidl's residual-CNN step ran 3x slower with torch merely imported. These
// threads are minidl's alone, and so are the products' (hostgemm.cpp: NumPy's BLAS runs single-threaded inside
// them), so nothing else of minidl's keeps threads busy.
//
// Between loops an idle thread first spins for `spinMicros` microseconds (the caller, waiting for the others,
// likewise), then sleeps on a condition variable. A step's loops come microseconds apart, and each that found the
// other thread asleep waited for it to wake: with loops of 10-100 µs, a step of split products (hostgemm.cpp) took
// twice as long on the 2-core VM (hostkernel.SPIN_MICROS). The spin is bounded, so an idle process burns at most
// `spinMicros` of a core after its last loop.
//
// minidl_parallel(n, values, chunk, context) splits [0, n) as OpenMP's schedule(static) does (one contiguous range
// per thread, the first n % threads ranges one longer) and runs chunk(context, begin, end) on each range; it returns
// when every range is done. The caller's thread runs the first range, then claims, as the workers do, those no
// thread has claimed yet: a worker still asleep never delays a loop, and a range's results are the same whichever
// thread runs it. A loop of fewer than the pool's `parallelFrom` values (its size times the values one element
// reads or writes), one that finds the pool busy (a loop of another Python thread, which ctypes lets run at once)
// or one that a range of a loop starts (a kernel run per image inside a batch of products, hostgemm.cpp) runs all
// of [0, n) on its own thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace {

#if defined(__x86_64__) || defined(__i386__)
void relax() { _mm_pause(); }  // a spinning thread's hint to the core: no speculation, less power
#else
void relax() { std::this_thread::yield(); }
#endif

typedef void (*Chunk)(void*, ptrdiff_t, ptrdiff_t);

struct Pool {
  Pool(int threads, long spinMicros, ptrdiff_t parallelFrom)
      : threads(threads), spin(spinMicros), parallelFrom(parallelFrom) {}
  const int threads;              // the loop's threads and ranges, the caller's included
  const std::chrono::microseconds spin;  // how long an idle thread spins before it sleeps
  const ptrdiff_t parallelFrom;   // the values from which a loop is split among the threads
  std::mutex busy;                // held by the thread running a loop, for the whole loop
  std::mutex state;               // guards the loop's description below, and the sleeps
  std::condition_variable start, finished;
  // The current loop's number (high bits) and its next unclaimed range (low RANGE_BITS): a thread claims a range by
  // moving it on, with the loop's number it saw, so a thread that saw an earlier loop claims nothing of this one.
  std::atomic<uint64_t> ticket{0};
  std::atomic<int> done{0};       // ranges of the current loop finished
  ptrdiff_t n = 0;
  Chunk chunk = nullptr;
  void* context = nullptr;
};

constexpr int RANGE_BITS = 24;  // threads in a pool: fewer than 2^24; loops: 2^40 before the number wraps
constexpr uint64_t RANGE_MASK = (uint64_t(1) << RANGE_BITS) - 1;

Pool* pool = nullptr;  // never freed: detached workers hold it until the process ends
thread_local bool inRange = false;  // this thread runs a range of a loop: a loop it starts stays on it

// Spin until done() or for the pool's spin time; whether done() held.
template <typename Done>
bool spinUntil(const Pool& loop, Done done) {
  if (loop.spin.count() <= 0) return done();
  const auto until = std::chrono::steady_clock::now() + loop.spin;
  for (;;) {
    for (int pause = 0; pause < 16; ++pause) {
      if (done()) return true;
      relax();
    }
    if (std::chrono::steady_clock::now() > until) return done();
  }
}

void run(const Pool& loop, int index) {
  const ptrdiff_t share = loop.n / loop.threads, longer = loop.n % loop.threads;
  const ptrdiff_t begin = index * share + (index < longer ? index : longer);
  const ptrdiff_t end = begin + share + (index < longer ? 1 : 0);
  inRange = true;
  if (begin < end) loop.chunk(loop.context, begin, end);
  inRange = false;
}

// Run range `index` of the current loop; the thread that finishes its last range wakes the caller, should it sleep.
void runRange(Pool& loop, int index) {
  run(loop, index);
  if (loop.done.fetch_add(1) + 1 == loop.threads) {
    std::lock_guard<std::mutex> guard(loop.state);
    loop.finished.notify_one();
  }
}

// Claim and run ranges of loop `number` until none is left.
void claimRanges(Pool& loop, uint64_t number) {
  uint64_t ticket = loop.ticket.load();
  while (ticket >> RANGE_BITS == number && static_cast<int>(ticket & RANGE_MASK) < loop.threads) {
    if (!loop.ticket.compare_exchange_weak(ticket, ticket + 1)) continue;  // ticket now holds the newer value
    runRange(loop, static_cast<int>(ticket & RANGE_MASK));
    ticket = loop.ticket.load();
  }
}

void work(Pool* loop, uint64_t seen) {
  for (;;) {
    const auto started = [&] { return loop->ticket.load() >> RANGE_BITS != seen; };
    if (!spinUntil(*loop, started)) {
      std::unique_lock<std::mutex> guard(loop->state);
      loop->start.wait(guard, started);
    }
    seen = loop->ticket.load() >> RANGE_BITS;
    claimRanges(*loop, seen);
  }
}

}  // namespace

// A new pool of `threads` threads (1: every loop runs on its caller's thread) whose idle threads spin for
// `spinMicros` microseconds before they sleep, splitting loops of `parallelFrom` values or more. Called once per
// process, and again in a forked child, whose copy of the parent's pool has no threads.
extern "C" void minidl_start_threads(int threads, long spinMicros, ptrdiff_t parallelFrom) {
  pool = new Pool(threads < 1 ? 1 : threads, spinMicros, parallelFrom);
  for (int index = 1; index < pool->threads; ++index) std::thread(work, pool, uint64_t(0)).detach();
}

extern "C" void minidl_parallel(ptrdiff_t n, ptrdiff_t values, Chunk chunk, void* context) {
  Pool* loop = pool;
  if (loop->threads == 1 || values < loop->parallelFrom || inRange || !loop->busy.try_lock()) {
    chunk(context, 0, n);
    return;
  }
  uint64_t number;
  {
    std::lock_guard<std::mutex> guard(loop->state);
    loop->n = n;
    loop->chunk = chunk;
    loop->context = context;
    loop->done = 0;
    number = (loop->ticket.load() >> RANGE_BITS) + 1;
    loop->ticket = number << RANGE_BITS | 1;  // the first range is the caller's
  }
  loop->start.notify_all();
  runRange(*loop, 0);
  claimRanges(*loop, number);
  const auto finished = [&] { return loop->done.load() == loop->threads; };
  if (!spinUntil(*loop, finished)) {
    std::unique_lock<std::mutex> guard(loop->state);
    loop->finished.wait(guard, finished);
  }
  loop->busy.unlock();
}
