// minidl's own threads for the host kernels' parallel loops (loaded by hostkernel.threadPool before any kernel).
//
// The kernels do not use an OpenMP runtime: every OpenMP runtime in a process answers to one soname
// (libgomp.so.1), so a kernel bound to whichever copy was loaded first, and PyTorch's wheel brings its own, read
// at `import torch`, before minidl could ask for passive waits. Its idle threads then spun and took the cores
// from NumPy's BLAS threads, and minidl's residual-CNN step ran 3x slower with torch merely imported. These
// threads are minidl's alone: idle, they sleep on a condition variable whatever else the process loaded or set.
//
// minidl_parallel(n, chunk, context) splits [0, n) as OpenMP's schedule(static) does (one contiguous range per
// thread, the first n % threads ranges one longer) and runs chunk(context, begin, end) on each range, the
// caller's thread taking the first; it returns when every range is done. A loop that finds the pool busy (a
// loop of another Python thread, which ctypes lets run at once) or that a range of a loop starts (a kernel run
// per image inside a batch of products, hostgemm.cpp) runs all of [0, n) on its own thread.
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

namespace {

typedef void (*Chunk)(void*, ptrdiff_t, ptrdiff_t);

struct Pool {
  explicit Pool(int threads) : threads(threads) {}
  const int threads;              // the loop's threads, the caller's included
  std::mutex busy;                // held by the thread running a loop, for the whole loop
  std::mutex state;               // guards everything below
  std::condition_variable start, finished;
  unsigned long generation = 0;   // loops started
  int running = 0;                // workers still on the current loop
  ptrdiff_t n = 0;
  Chunk chunk = nullptr;
  void* context = nullptr;
};

Pool* pool = nullptr;  // never freed: detached workers hold it until the process ends
thread_local bool inRange = false;  // this thread runs a range of a loop: a loop it starts stays on it

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
    {
      std::unique_lock<std::mutex> guard(loop->state);
      loop->start.wait(guard, [&] { return loop->generation != seen; });
      seen = loop->generation;
    }
    run(*loop, index);
    std::lock_guard<std::mutex> guard(loop->state);
    if (--loop->running == 0) loop->finished.notify_one();
  }
}

}  // namespace

// A new pool of `threads` threads (1: every loop runs on its caller's thread). Called once per process, and again
// in a forked child, whose copy of the parent's pool has no threads.
extern "C" void minidl_start_threads(int threads) {
  pool = new Pool(threads < 1 ? 1 : threads);
  for (int index = 1; index < pool->threads; ++index) std::thread(work, pool, index, pool->generation).detach();
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
  {
    std::unique_lock<std::mutex> guard(loop->state);
    loop->finished.wait(guard, [&] { return loop->running == 0; });
  }
  loop->busy.unlock();
}
