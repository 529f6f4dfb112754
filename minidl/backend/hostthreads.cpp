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
// minidl_parallel(n, chunk, context) splits [0, n) as OpenMP's schedule(static) does (one contiguous range per
// thread, the first n % threads ranges one longer) and runs chunk(context, begin, end) on each range, the
// caller's thread taking the first; it returns when every range is done. A loop that finds the pool busy (a
// loop of another Python thread, which ctypes lets run at once) or that a range of a loop starts (a kernel run
// per image inside a batch of products, hostgemm.cpp) runs all of [0, n) on its own thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
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
  Pool(int threads, long spinMicros) : threads(threads), spin(spinMicros) {}
  const int threads;              // the loop's threads, the caller's included
  const std::chrono::microseconds spin;  // how long an idle thread spins before it sleeps
  std::mutex busy;                // held by the thread running a loop, for the whole loop
  std::mutex state;               // guards the loop's description below, and the sleeps
  std::condition_variable start, finished;
  std::atomic<unsigned long> generation{0};  // loops started: changed under `state`, read while spinning
  std::atomic<int> running{0};               // workers still on the current loop
  ptrdiff_t n = 0;
  Chunk chunk = nullptr;
  void* context = nullptr;
};

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

void work(Pool* loop, int index, unsigned long seen) {
  for (;;) {
    const auto started = [&] { return loop->generation.load() != seen; };
    if (!spinUntil(*loop, started)) {
      std::unique_lock<std::mutex> guard(loop->state);
      loop->start.wait(guard, started);
    }
    seen = loop->generation.load();
    run(*loop, index);
    if (loop->running.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> guard(loop->state);  // the caller sleeps or is about to: wake it under the lock
      loop->finished.notify_one();
    }
  }
}

}  // namespace

// A new pool of `threads` threads (1: every loop runs on its caller's thread) whose idle threads spin for
// `spinMicros` microseconds before they sleep. Called once per process, and again in a forked child, whose copy
// of the parent's pool has no threads.
extern "C" void minidl_start_threads(int threads, long spinMicros) {
  pool = new Pool(threads < 1 ? 1 : threads, spinMicros);
  for (int index = 1; index < pool->threads; ++index) std::thread(work, pool, index, 0UL).detach();
}

extern "C" void minidl_parallel(ptrdiff_t n, Chunk chunk, void* context) {
  Pool* loop = pool;
  if (loop->threads == 1 || inRange || !loop->busy.try_lock()) {
    chunk(context, 0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> guard(loop->state);
    loop->n = n;
    loop->chunk = chunk;
    loop->context = context;
    loop->running = loop->threads - 1;
    ++loop->generation;
  }
  loop->start.notify_all();
  run(*loop, 0);
  const auto finished = [&] { return loop->running.load() == 0; };
  if (!spinUntil(*loop, finished)) {
    std::unique_lock<std::mutex> guard(loop->state);
    loop->finished.wait(guard, finished);
  }
  loop->busy.unlock();
}
