// The raw MPI all-reduce of ResNet-18's gradient volume (11.2M float32, 45 MB) between the ranks:
// mpicc -O2 bench/mpi_allreduce.c -o /tmp/ar && mpirun --allow-run-as-root --oversubscribe -np 2 /tmp/ar
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
int main(int c, char** v) {
  MPI_Init(&c, &v);
  int n = 11200000, r; MPI_Comm_rank(MPI_COMM_WORLD, &r);
  float* b = calloc(n, 4);
  for (int i = 0; i < 3; ++i) MPI_Allreduce(MPI_IN_PLACE, b, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  double t = MPI_Wtime();
  for (int i = 0; i < 10; ++i) MPI_Allreduce(MPI_IN_PLACE, b, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  t = (MPI_Wtime() - t) / 10;
  if (!r) printf("allreduce 45 MB, 2 ranks: %.1f ms, %.2f GB/s algbw\n", t * 1e3, n * 4 / t / 1e9);
  MPI_Finalize();
}
