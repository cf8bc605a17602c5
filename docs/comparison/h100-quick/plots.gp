# Draws sparsepool-bench's plots (the same figures as results.csv): gnuplot plots.gp
set terminal pngcairo size 900,560 font ',11'
set key outside right top
set grid
set offsets graph 0.04, graph 0.04, 0, 0
$by_context0 << EOD
8192 1251.6754 1251.340 0.7978
32768 5512.6142 5002.840 0.1813
EOD
$by_context1 << EOD
8192 3227.1092 312.625 0.3097
32768 2904.1090 312.625 0.3441
EOD
$by_context2 << EOD
8192 74.2746 312.625 13.3150
32768 68.2239 312.625 14.4885
EOD
$by_context3 << EOD
8192 57.5987 34.475 17.1322
32768 57.5463 47.053 17.1383
EOD
$by_context4 << EOD
8192 9.7833 312.625 95.3754
32768 9.3836 312.625 99.0401
EOD
$by_context5 << EOD
8192 7.3370 34.475 125.3527
32768 8.1095 47.053 113.1438
EOD
set logscale x 2
set logscale y
set xlabel 'context (tokens)'
set output 'fetch_latency.png'
set title 'fetch time per decode step, p50 (batch 4)'
set ylabel 'ms per step (all layers)'
plot $by_context0 using 1:2 with linespoints lw 2 pt 5 title 'rdma-full-prefix', \
     $by_context1 using 1:2 with linespoints lw 2 pt 6 title 'rdma-topk', \
     $by_context2 using 1:2 with linespoints lw 2 pt 7 title 'cxl-cpu-topk', \
     $by_context3 using 1:2 with linespoints lw 2 pt 8 title 'cxl-cpu-topk-cache', \
     $by_context4 using 1:2 with linespoints lw 2 pt 9 title 'cxl-gpu-topk', \
     $by_context5 using 1:2 with linespoints lw 2 pt 10 title 'cxl-gpu-topk-cache'
set output 'link_bytes.png'
set title 'bytes crossing the link per decode step (batch 4)'
set ylabel 'MiB per step'
plot $by_context0 using 1:3 with linespoints lw 2 pt 5 title 'rdma-full-prefix', \
     $by_context1 using 1:3 with linespoints lw 2 pt 6 title 'rdma-topk', \
     $by_context2 using 1:3 with linespoints lw 2 pt 7 title 'cxl-cpu-topk', \
     $by_context3 using 1:3 with linespoints lw 2 pt 8 title 'cxl-cpu-topk-cache', \
     $by_context4 using 1:3 with linespoints lw 2 pt 9 title 'cxl-gpu-topk', \
     $by_context5 using 1:3 with linespoints lw 2 pt 10 title 'cxl-gpu-topk-cache'
set output 'steps_per_second.png'
set title 'decode steps per second, fetch-bound (batch 4)'
set ylabel 'steps/s'
plot $by_context0 using 1:4 with linespoints lw 2 pt 5 title 'rdma-full-prefix', \
     $by_context1 using 1:4 with linespoints lw 2 pt 6 title 'rdma-topk', \
     $by_context2 using 1:4 with linespoints lw 2 pt 7 title 'cxl-cpu-topk', \
     $by_context3 using 1:4 with linespoints lw 2 pt 8 title 'cxl-cpu-topk-cache', \
     $by_context4 using 1:4 with linespoints lw 2 pt 9 title 'cxl-gpu-topk', \
     $by_context5 using 1:4 with linespoints lw 2 pt 10 title 'cxl-gpu-topk-cache'
$by_batch0 << EOD
1 1165.4398 1250.710 0.8575
4 5512.6142 5002.840 0.1813
EOD
$by_batch1 << EOD
1 800.5298 78.156 1.2481
4 2904.1090 312.625 0.3441
EOD
$by_batch2 << EOD
1 17.1036 78.156 57.5562
4 68.2239 312.625 14.4885
EOD
$by_batch3 << EOD
1 13.6108 11.773 72.0352
4 57.5463 47.053 17.1383
EOD
$by_batch4 << EOD
1 4.0019 78.156 237.5067
4 9.3836 312.625 99.0401
EOD
$by_batch5 << EOD
1 7.8185 11.773 124.4491
4 8.1095 47.053 113.1438
EOD
set logscale x 2
set logscale y
set xlabel 'batch (requests)'
set output 'steps_per_second_by_batch.png'
set title 'decode steps per second by batch (context 32K)'
set ylabel 'steps/s'
plot $by_batch0 using 1:4 with linespoints lw 2 pt 5 title 'rdma-full-prefix', \
     $by_batch1 using 1:4 with linespoints lw 2 pt 6 title 'rdma-topk', \
     $by_batch2 using 1:4 with linespoints lw 2 pt 7 title 'cxl-cpu-topk', \
     $by_batch3 using 1:4 with linespoints lw 2 pt 8 title 'cxl-cpu-topk-cache', \
     $by_batch4 using 1:4 with linespoints lw 2 pt 9 title 'cxl-gpu-topk', \
     $by_batch5 using 1:4 with linespoints lw 2 pt 10 title 'cxl-gpu-topk-cache'
