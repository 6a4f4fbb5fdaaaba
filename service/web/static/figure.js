// compare, trend and trial pages: Plotly draws the figure of <script type="application/json" id="figure-data">
// into the element its data-plot attribute names.
const figureData = document.getElementById("figure-data");
const figure = JSON.parse(figureData.textContent);
Plotly.newPlot(figureData.dataset.plot, figure.data, figure.layout, {responsive: true});
