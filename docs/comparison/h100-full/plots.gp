# Draws sparsepool-bench's plots (the same figures as results.csv): gnuplot plots.gp
set terminal pngcairo size 900,560 font ',11'
set key outside right top
set grid
set offsets graph 0.04, graph 0.04, 0, 0
$by_context0 << EOD
8192 276.4706 1250.500 3.5760
16384 277.1993 1250.500 3.5663
32768 303.6496 1250.500 3.2497
65536 294.0306 1250.500 3.3486
131072 358.8814 1250.500 2.7327
EOD
$by_context1 << EOD
8192 247.0394 121.593 3.9985
16384 256.8068 159.700 3.8489
32768 327.2462 182.177 3.0176
65536 318.4709 196.227 3.0989
131072 319.3460 206.140 3.0756
EOD
$by_context2 << EOD
8192 32.6554 1250.500 28.4323
16384 31.4509 1250.500 29.3974
32768 34.5035 1250.500 26.0425
65536 32.0015 1250.500 28.3918
131072 31.8301 1250.500 27.1914
EOD
$by_context3 << EOD
8192 8.7700 121.593 88.5110
16384 10.2268 159.700 76.3757
32768 11.7227 182.177 64.5766
65536 12.1040 196.227 62.0898
131072 15.2173 206.140 47.1564
EOD
set logscale x 2
set logscale y
set xlabel 'context (tokens)'
set output 'fetch_latency.png'
set title 'fetch time per decode step, p50 (batch 16)'
set ylabel 'ms per step (all layers)'
plot $by_context0 using 1:2 with linespoints lw 2 pt 5 title 'cxl-cpu-topk', \
     $by_context1 using 1:2 with linespoints lw 2 pt 6 title 'cxl-cpu-topk-cache', \
     $by_context2 using 1:2 with linespoints lw 2 pt 7 title 'cxl-gpu-topk', \
     $by_context3 using 1:2 with linespoints lw 2 pt 8 title 'cxl-gpu-topk-cache'
set output 'link_bytes.png'
set title 'bytes crossing the link per decode step (batch 16)'
set ylabel 'MiB per step'
plot $by_context0 using 1:3 with linespoints lw 2 pt 5 title 'cxl-cpu-topk', \
     $by_context1 using 1:3 with linespoints lw 2 pt 6 title 'cxl-cpu-topk-cache', \
     $by_context2 using 1:3 with linespoints lw 2 pt 7 title 'cxl-gpu-topk', \
     $by_context3 using 1:3 with linespoints lw 2 pt 8 title 'cxl-gpu-topk-cache'
set output 'steps_per_second.png'
set title 'decode steps per second, fetch-bound (batch 16)'
set ylabel 'steps/s'
plot $by_context0 using 1:4 with linespoints lw 2 pt 5 title 'cxl-cpu-topk', \
     $by_context1 using 1:4 with linespoints lw 2 pt 6 title 'cxl-cpu-topk-cache', \
     $by_context2 using 1:4 with linespoints lw 2 pt 7 title 'cxl-gpu-topk', \
     $by_context3 using 1:4 with linespoints lw 2 pt 8 title 'cxl-gpu-topk-cache'
$by_batch0 << EOD
1 18.3917 78.156 53.1820
4 77.4704 312.625 12.6429
16 358.8814 1250.500 2.7327
EOD
$by_batch1 << EOD
1 17.7495 12.833 55.1961
4 90.6297 51.522 10.8293
16 319.3460 206.140 3.0756
EOD
$by_batch2 << EOD
1 4.5327 78.156 197.5118
4 9.9243 312.625 87.1494
16 31.8301 1250.500 27.1914
EOD
$by_batch3 << EOD
1 9.4874 12.833 98.8672
4 10.4628 51.522 79.9842
16 15.2173 206.140 47.1564
EOD
set logscale x 2
set logscale y
set xlabel 'batch (requests)'
set output 'steps_per_second_by_batch.png'
set title 'decode steps per second by batch (context 128K)'
set ylabel 'steps/s'
plot $by_batch0 using 1:4 with linespoints lw 2 pt 5 title 'cxl-cpu-topk', \
     $by_batch1 using 1:4 with linespoints lw 2 pt 6 title 'cxl-cpu-topk-cache', \
     $by_batch2 using 1:4 with linespoints lw 2 pt 7 title 'cxl-gpu-topk', \
     $by_batch3 using 1:4 with linespoints lw 2 pt 8 title 'cxl-gpu-topk-cache'
