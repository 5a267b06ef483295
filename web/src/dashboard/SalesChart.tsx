// One line per series over the report's buckets, drawn with Chart.js (bundled, only the
// parts used). The canvas is an image to screen readers; the figures are in a table beside it.
import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import { useEffect, useRef } from "react";

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Tooltip, Legend);

// Okabe-Ito: told apart also by people with colour-blindness.
const palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

export interface ChartSeries {
  label: string;
  values: number[];
}

export function SalesChart({ labels, series, description }: { labels: string[]; series: ChartSeries[]; description: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"line"> | null>(null);

  useEffect(() => {
    chart.current = new Chart(canvas.current!, {
      type: "line",
      data: { labels: [], datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true } },
        plugins: { legend: { position: "bottom" } },
      },
    });
    return () => chart.current?.destroy();
  }, []);

  useEffect(() => {
    const c = chart.current!;
    c.data.labels = labels;
    c.data.datasets = series.map((s, i) => ({
      label: s.label,
      data: s.values,
      borderColor: palette[i % palette.length],
      backgroundColor: palette[i % palette.length],
      pointRadius: labels.length > 60 ? 0 : 2,
      borderWidth: 2,
      tension: 0.2,
    }));
    c.update();
  }, [labels, series]);

  return (
    <div className="chart">
      <canvas ref={canvas} role="img" aria-label={description} data-testid="sales-chart" />
    </div>
  );
}
