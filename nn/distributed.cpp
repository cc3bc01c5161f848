#include "nn/distributed.h"

#include <cstdio>
#include <cstdlib>

#include "tensor/error.h"

#include <cstring>
#include <filesystem>

#if NANORLHF_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

#if NANORLHF_WITH_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: OpenMPI's C++ bindings need a library we do not link
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace nanorlhf::dist {

namespace {
bool g_mpi = false;  // MPI_Init ran
int g_rank = 0, g_size = 1;

bool g_gpu_per_rank = false;
#if NANORLHF_WITH_NCCL
ncclComm_t g_nccl = nullptr;
#endif

// GPUs the NVIDIA driver lists, read without starting CUDA (CUDA_VISIBLE_DEVICES must be set first).
[[maybe_unused]] int driver_gpu_count() {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

bool launched_by_mpirun() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_RANK"); }

#if NANORLHF_WITH_MPI
void check(int rc, const char *what) {
  if (rc != MPI_SUCCESS) abort(fmt::format("{} failed (MPI error {})", what, rc), 1);
}

template <class T>
std::vector<T> gather(const std::vector<T> &local, MPI_Datatype type) {
  if (!g_mpi || g_size == 1) return local;
  int n = (int)local.size();
  std::vector<int> counts(g_size), offsets(g_size, 0);
  check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  for (int r = 1; r < g_size; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  std::vector<T> out((size_t)(offsets.back() + counts.back()));
  check(MPI_Allgatherv(local.data(), n, type, out.data(), counts.data(), offsets.data(), type, MPI_COMM_WORLD),
        "MPI_Allgatherv");
  return out;
}
#endif
}  // namespace

void init(int *argc, char ***argv) {
  if (g_mpi || !launched_by_mpirun()) return;
#if NANORLHF_WITH_MPI
  check(MPI_Init(argc, argv), "MPI_Init");
  g_mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
#if NANORLHF_WITH_NCCL
  const char *local_rank = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  if (g_size > 1 && local_rank && !std::getenv("CUDA_VISIBLE_DEVICES") && driver_gpu_count() >= local_size()) {
    ::setenv("CUDA_VISIBLE_DEVICES", local_rank, 1);
    g_gpu_per_rank = true;
  }
#endif
#else
  if (std::getenv("OMPI_COMM_WORLD_SIZE") && std::atoi(std::getenv("OMPI_COMM_WORLD_SIZE")) > 1) {
    std::fprintf(stderr, "error: launched by mpirun, but this nanorlhf was built without MPI (install "
                         "libopenmpi-dev, `make deps`, and rebuild)\n");
    std::exit(1);
  }
#endif
}

void finalize() {
#if NANORLHF_WITH_NCCL
  if (g_nccl) ncclCommDestroy(g_nccl);
  g_nccl = nullptr;
#endif
#if NANORLHF_WITH_MPI
  if (g_mpi) MPI_Finalize();
#endif
  g_mpi = false;
}

bool initialized() { return g_mpi; }
int rank() { return g_rank; }
int world_size() { return g_size; }

int local_size() {
  const char *s = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  return g_mpi && s ? std::max(1, std::atoi(s)) : 1;
}

void barrier() {
#if NANORLHF_WITH_MPI
  if (g_mpi) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void all_reduce_sum(float *x, int64_t n) {
#if NANORLHF_WITH_MPI
  if (g_mpi && g_size > 1)
    check(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
#endif
}

void all_reduce_sum(double *x, int64_t n) {
#if NANORLHF_WITH_MPI
  if (g_mpi && g_size > 1)
    check(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
#endif
}

#if NANORLHF_WITH_MPI
std::vector<double> all_gather(const std::vector<double> &local) { return gather(local, MPI_DOUBLE); }
std::vector<int64_t> all_gather(const std::vector<int64_t> &local) { return gather(local, MPI_INT64_T); }
std::vector<float> all_gather(const std::vector<float> &local) { return gather(local, MPI_FLOAT); }
std::vector<std::string> all_gather(const std::string &local) {
  if (!g_mpi || g_size == 1) return {local};
  const std::vector<int64_t> sizes = all_gather(std::vector<int64_t>{(int64_t)local.size()});
  const std::vector<char> all = gather(std::vector<char>(local.begin(), local.end()), MPI_CHAR);
  std::vector<std::string> out;
  size_t at = 0;
  for (int64_t n : sizes) out.emplace_back(all.begin() + (long)at, all.begin() + (long)(at + n)), at += (size_t)n;
  return out;
}
#else
std::vector<double> all_gather(const std::vector<double> &local) { return local; }
std::vector<int64_t> all_gather(const std::vector<int64_t> &local) { return local; }
std::vector<float> all_gather(const std::vector<float> &local) { return local; }
std::vector<std::string> all_gather(const std::string &local) { return {local}; }
#endif

std::string broadcast(const std::string &s) {
#if NANORLHF_WITH_MPI
  if (!g_mpi || g_size == 1) return s;
  int n = (int)s.size();
  check(MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  std::string out = g_rank == 0 ? s : std::string((size_t)n, '\0');
  check(MPI_Bcast(out.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return out;
#else
  return s;
#endif
}

bool device_all_reduce() { return g_gpu_per_rank && g_size > 1; }

void all_reduce_sum_device(float *x, int64_t n) {
#if NANORLHF_WITH_NCCL
  NR_CHECK(device_all_reduce(), "all_reduce_sum_device: needs NCCL and a GPU per rank");
  auto check_nccl = [](ncclResult_t r, const char *what) {
    if (r != ncclSuccess) abort(fmt::format("{} failed: {}", what, ncclGetErrorString(r)), 1);
  };
  if (!g_nccl) {  // rank 0 makes the id, MPI carries it, every rank joins
    ncclUniqueId id;
    if (g_rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    const std::string s = broadcast(std::string(reinterpret_cast<const char *>(&id), sizeof id));
    std::memcpy(&id, s.data(), sizeof id);
    check_nccl(ncclCommInitRank(&g_nccl, g_size, id, g_rank), "ncclCommInitRank");
  }
  check_nccl(ncclAllReduce(x, x, (size_t)n, ncclFloat, ncclSum, g_nccl, /*stream=*/0), "ncclAllReduce");
  const cudaError_t e = cudaStreamSynchronize(0);
  if (e != cudaSuccess) abort(fmt::format("ncclAllReduce: {}", cudaGetErrorString(e)), 1);
#else
  (void)x, (void)n;
  throw Error("all_reduce_sum_device: this build has no NCCL");
#endif
}

void abort(const std::string &message, int code) {
  if (g_size > 1) std::fprintf(stderr, "rank %d: %s\n", g_rank, message.c_str());
  else std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
#if NANORLHF_WITH_MPI
  if (g_mpi && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

}  // namespace nanorlhf::dist
