# The chart of docs/benchmarks.md, drawn by bench/run.sh from its own output:
#   gnuplot -e "speedup='speedup.dat'; cold='cold.dat'; output='benchmarks.svg'; coldmib='1024'" bench/chart.gp
# speedup.dat: "label" measured target|-    cold.dat: "client" seconds peak_rss_mib
set terminal svg size 1000,440 dynamic font "sans,11" background "#ffffff"
set output output
set datafile missing "-"
set style fill solid 0.75 border -1
set boxwidth 0.6
set grid ytics lc rgb "#dddddd"
set key top left
set bmargin 4
set multiplot

set origin 0,0
set size 0.58,1
set title "hubcache's speedup over the peer (higher is better)"
set logscale y
set yrange [0.1:*]
set ylabel "speedup (x, log scale)"
set xtics font ",9" nomirror
set xrange [-0.6:*]
plot speedup using 0:2:xtic(1) with boxes lc rgb "#4c72b0" title "measured", \
     '' using 0:3 with points pt 7 ps 1.2 lc rgb "#c44e52" title "target", \
     1 with lines dt 2 lc rgb "#888888" notitle, \
     '' using 0:2:(sprintf("%.2g", $2)) with labels offset 0,0.8 font ",9" notitle

unset logscale y
set origin 0.58,0
set size 0.42,1
set title sprintf("cold %s MiB LFS file (lower is better)", coldmib)
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set ylabel "wall time (s)"
plot cold using 0:2:xtic(1) with boxes lc rgb "#55a868" notitle, \
     '' using 0:2:(sprintf("%.2f s\n%.0f MiB", $2, $3)) with labels offset 0,1.3 font ",9" notitle
unset multiplot
