# Draws sparsepool-serve-bench's plots from timeline.csv: gnuplot plots.gp
set terminal pngcairo size 900,560 font ',11'
set datafile separator ','
set key outside right top
set grid
set output 'ttft_by_arrival.png'
set title 'time to first token of each request, by its arrival'
set xlabel 'arrival (s since the run began)'
set ylabel 'TTFT (s)'
set logscale y
plot 'timeline.csv' skip 1 using 3:((strcol(1) eq 'rdma-prefix-pull') ? $8 - $3 : NaN) with points pt 5 title 'rdma-prefix-pull', \
     'timeline.csv' skip 1 using 3:((strcol(1) eq 'rdma-topk') ? $8 - $3 : NaN) with points pt 6 title 'rdma-topk', \
     'timeline.csv' skip 1 using 3:((strcol(1) eq 'cxl-cpu-topk') ? $8 - $3 : NaN) with points pt 7 title 'cxl-cpu-topk'
unset logscale
set output 'ttft_cdf.png'
set title 'time to first token: share of requests served within'
set xlabel 'TTFT (s)'
set ylabel 'share of requests'
set logscale x
set yrange [0:1]
plot 'timeline.csv' skip 1 using ((strcol(1) eq 'rdma-prefix-pull') ? $8 - $3 : NaN):(1.0) smooth cnormal with steps lw 2 title 'rdma-prefix-pull', \
     'timeline.csv' skip 1 using ((strcol(1) eq 'rdma-topk') ? $8 - $3 : NaN):(1.0) smooth cnormal with steps lw 2 title 'rdma-topk', \
     'timeline.csv' skip 1 using ((strcol(1) eq 'cxl-cpu-topk') ? $8 - $3 : NaN):(1.0) smooth cnormal with steps lw 2 title 'cxl-cpu-topk'
unset logscale
set yrange [*:*]
set output 'tbt_by_context.png'
set title 'mean time between tokens of each request, by its prompt'
set xlabel 'prompt (tokens)'
set ylabel 'mean TBT (ms)'
set logscale x 2
plot 'timeline.csv' skip 1 using 4:((strcol(1) eq 'rdma-prefix-pull') && $5 > 1 ? ($9 - $8) * 1000 / ($5 - 1) : NaN) with points pt 5 title 'rdma-prefix-pull', \
     'timeline.csv' skip 1 using 4:((strcol(1) eq 'rdma-topk') && $5 > 1 ? ($9 - $8) * 1000 / ($5 - 1) : NaN) with points pt 6 title 'rdma-topk', \
     'timeline.csv' skip 1 using 4:((strcol(1) eq 'cxl-cpu-topk') && $5 > 1 ? ($9 - $8) * 1000 / ($5 - 1) : NaN) with points pt 7 title 'cxl-cpu-topk'
unset logscale
