import Foundation

/// Plain SVG charts of a sweep, written by hand (no dependencies), readable in any browser.
///
/// - `pareto(_:)`: bits per weight (x) against mean relative error (y, log scale), every point a
///   labelled dot, the Pareto front (`SweepSummary.paretoFront`) drawn as a line through its points.
/// - `layers(_:)`: a heat map, one row per tensor the sweep changed and one column per point, the
///   cell's colour the tensor's relative error on a log scale (light = small, dark red = large),
///   with the value in its tooltip (`<title>`).
public enum SweepCharts {
    public static func pareto(_ summary: SweepSummary) -> String {
        let width = 720.0, height = 480.0, left = 80.0, right = 30.0, top = 40.0, bottom = 60.0
        let rows = summary.rows
        let xs = rows.map(\.bitsPerWeight), ys = rows.map { max($0.meanRelativeError, 1e-12) }
        let (x0, x1) = padded(xs.min() ?? 0, xs.max() ?? 1, log: false)
        let (y0, y1) = padded(log10(ys.min() ?? 1e-3), log10(ys.max() ?? 1), log: true)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { top + (y1 - log10(y)) / (y1 - y0) * (height - top - bottom) }
        var svg = header(width, height, title: "Sweep: bits per weight against mean relative error")
        svg += axes(left: left, right: width - right, top: top, bottom: height - bottom)
        for tick in ticks(x0, x1) {
            svg += "<line x1=\"\(f(px(tick)))\" y1=\"\(f(height - bottom))\" x2=\"\(f(px(tick)))\" y2=\"\(f(height - bottom + 5))\" stroke=\"#333\"/>"
            svg += "<text x=\"\(f(px(tick)))\" y=\"\(f(height - bottom + 20))\" text-anchor=\"middle\" font-size=\"12\">\(f(tick, 2))</text>\n"
        }
        for e in Int(floor(y0))...Int(ceil(y1)) where Double(e) >= y0 - 1e-9 && Double(e) <= y1 + 1e-9 {
            let y = py(pow(10, Double(e)))
            svg += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(width - right))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\" font-size=\"12\">1e\(e)</text>\n"
        }
        svg += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 15))\" text-anchor=\"middle\" font-size=\"13\">bits per weight</text>\n"
        svg += "<text x=\"18\" y=\"\(f((top + height - bottom) / 2))\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 18 \(f((top + height - bottom) / 2)))\">mean relative error (log)</text>\n"
        let front = summary.paretoFront()
        if front.count > 1 {
            let path = front.map { "\(f(px(xs[$0]))),\(f(py(ys[$0])))" }.joined(separator: " ")
            svg += "<polyline class=\"pareto-front\" points=\"\(path)\" fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\"/>\n"
        }
        for (i, row) in rows.enumerated() {
            let onFront = front.contains(i)
            svg += "<g class=\"point\"><circle cx=\"\(f(px(xs[i])))\" cy=\"\(f(py(ys[i])))\" r=\"5\" fill=\"\(onFront ? "#c0392b" : "#2c3e50")\"><title>\(escape(row.point.label)): \(f(xs[i], 3)) bits, error \(String(format: "%.3e", ys[i]))</title></circle>"
            svg += "<text x=\"\(f(px(xs[i]) + 8))\" y=\"\(f(py(ys[i]) - 8))\" font-size=\"11\">\(escape(row.point.label))</text></g>\n"
        }
        return svg + "</svg>\n"
    }

    public static func layers(_ summary: SweepSummary) -> String {
        let rows = summary.rows
        var names: [String] = []
        for row in rows {
            for t in row.report.tensors where t.encoding != t.inputDType && !names.contains(t.name) { names.append(t.name) }
        }
        if names.isEmpty, let first = rows.first { names = first.report.tensors.map(\.name) }
        let cell = 28.0, labelWidth = 8.0 * Double(names.map(\.count).max() ?? 10) + 20, top = 140.0
        let width = labelWidth + cell * Double(max(rows.count, 1)) + 20, height = top + cell * Double(names.count) + 30
        var errors: [[Double?]] = names.map { name in rows.map { row in row.report.tensors.first { $0.name == name }?.relativeError } }
        let positive = errors.flatMap { $0.compactMap { $0 } }.filter { $0 > 0 }
        let lo = log10(positive.min() ?? 1e-6), hi = log10(positive.max() ?? 1)
        var svg = header(width, height, title: "Relative error per tensor and sweep point")
        for (j, row) in rows.enumerated() {
            let x = labelWidth + cell * (Double(j) + 0.5)
            svg += "<text x=\"\(f(x))\" y=\"\(f(top - 8))\" font-size=\"11\" transform=\"rotate(-60 \(f(x)) \(f(top - 8)))\">\(escape(row.point.label))</text>\n"
        }
        for (i, name) in names.enumerated() {
            let y = top + cell * Double(i)
            svg += "<text x=\"\(f(labelWidth - 6))\" y=\"\(f(y + cell * 0.65))\" text-anchor=\"end\" font-size=\"11\">\(escape(name))</text>\n"
            for j in rows.indices {
                let value = errors[i][j]
                let t = value.map { $0 > 0 && hi > lo ? (log10($0) - lo) / (hi - lo) : 0 } ?? 0
                let color = value == nil ? "#eeeeee" : heat(t)
                let text = value.map { String(format: "%.3e", $0) } ?? "absent"
                svg += "<rect class=\"cell\" x=\"\(f(labelWidth + cell * Double(j)))\" y=\"\(f(y))\" width=\"\(f(cell - 1))\" height=\"\(f(cell - 1))\" fill=\"\(color)\"><title>\(escape(name)) @ \(escape(rows[j].point.label)): \(text)</title></rect>\n"
            }
        }
        errors.removeAll()
        return svg + "</svg>\n"
    }

    // MARK: Pieces

    static func header(_ width: Double, _ height: Double, title: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" font-family=\"sans-serif\">\n<title>\(escape(title))</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"22\" font-size=\"15\">\(escape(title))</text>\n"
    }

    static func axes(left: Double, right: Double, top: Double, bottom: Double) -> String {
        "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\" stroke=\"#333\"/><line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"#333\"/>\n"
    }

    /// A range with 5% margins (at least 1 unit wide on a log scale, 0.5 on a linear one).
    static func padded(_ lo: Double, _ hi: Double, log: Bool) -> (Double, Double) {
        let span = max(hi - lo, log ? 1 : 0.5)
        let mid = (lo + hi) / 2
        return (mid - span * 0.55, mid + span * 0.55)
    }

    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 6
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        return stride(from: ceil(lo / step) * step, through: hi, by: step).map { $0 }
    }

    /// White → yellow → dark red for t in [0, 1].
    static func heat(_ t: Double) -> String {
        let t = min(max(t, 0), 1)
        let r = t < 0.5 ? 255 : Int(255 - (t - 0.5) * 2 * 100)
        let g = t < 0.5 ? Int(255 - t * 2 * 55) : Int(200 - (t - 0.5) * 2 * 200)
        let b = t < 0.5 ? Int(230 - t * 2 * 230) : 0
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    static func f(_ x: Double, _ decimals: Int = 1) -> String { String(format: "%.\(decimals)f", x) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
