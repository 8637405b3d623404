<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.16-Białowieża" hasScaleBasedVisibilityFlag="0" minScale="1e+08" styleCategories="AllStyleCategories" maxScale="0">
  <flags>
    <Identifiable>1</Identifiable>
    <Removable>1</Removable>
    <Searchable>1</Searchable>
    <Private>0</Private>
  </flags>
  <temporal mode="0" enabled="0" fetchMode="0">
    <fixedRange>
      <start></start>
      <end></end>
    </fixedRange>
  </temporal>
  <customproperties>
    <Option type="Map">
      <Option name="identify/format" type="QString" value="Value"/>
    </Option>
  </customproperties>
  <pipe-data-defined-properties>
    <Option type="Map">
      <Option name="name" type="QString" value=""/>
      <Option name="properties"/>
      <Option name="type" type="QString" value="collection"/>
    </Option>
  </pipe-data-defined-properties>
  <pipe>
    <provider>
      <resampling zoomedInResamplingMethod="nearestNeighbour" enabled="false" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
    </provider>
    <rasterrenderer classificationMax="0.3" type="singlebandpseudocolor" band="1" classificationMin="0" opacity="1" alphaBand="-1" nodataColor="">
      <minMaxOrigin>
        <limits>CumulativeCut</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader clip="0" maximumValue="0.3" classificationMode="1" minimumValue="0" labelPrecision="2" colorRampType="INTERPOLATED">
          <colorramp name="[source]" type="gradient">
            <Option type="Map">
              <Option name="color1" type="QString" value="255,255,178,255"/>
              <Option name="color2" type="QString" value="177,0,38,255"/>
              <Option name="discrete" type="QString" value="0"/>
              <Option name="rampType" type="QString" value="gradient"/>
              <Option name="stops" type="QString" value="0.166667;254,217,118,255:0.333333;254,178,76,255:0.500000;253,141,60,255:0.666667;252,78,42,255:0.833333;227,26,28,255"/>
            </Option>
            <prop v="255,255,178,255" k="color1"/>
            <prop v="177,0,38,255" k="color2"/>
            <prop v="0" k="discrete"/>
            <prop v="gradient" k="rampType"/>
            <prop v="0.166667;254,217,118,255:0.333333;254,178,76,255:0.500000;253,141,60,255:0.666667;252,78,42,255:0.833333;227,26,28,255" k="stops"/>
          </colorramp>
          <item label="0.00 K" alpha="255" value="0.0" color="#ffffb2"/>
          <item label="0.05 K" alpha="255" value="0.05" color="#fed976"/>
          <item label="0.10 K" alpha="255" value="0.1" color="#feb24c"/>
          <item label="0.15 K" alpha="255" value="0.15" color="#fd8d3c"/>
          <item label="0.20 K" alpha="255" value="0.2" color="#fc4e2a"/>
          <item label="0.25 K" alpha="255" value="0.25" color="#e31a1c"/>
          <item label="0.30 K" alpha="255" value="0.3" color="#b10026"/>
          <rampLegendSettings suffix=" K" minimumLabel="" useContinuousLegend="1" maximumLabel="" prefix="" direction="0" orientation="2">
            <numericFormat id="basic">
              <Option type="Map">
                <Option name="decimal_separator" type="QChar" value=""/>
                <Option name="decimals" type="int" value="2"/>
                <Option name="rounding_type" type="int" value="0"/>
                <Option name="show_plus" type="bool" value="false"/>
                <Option name="show_thousand_separator" type="bool" value="true"/>
                <Option name="show_trailing_zeros" type="bool" value="true"/>
                <Option name="thousand_separator" type="QChar" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast contrast="0" brightness="0" gamma="1"/>
    <huesaturation colorizeOn="0" colorizeGreen="128" saturation="0" invertColors="0" colorizeBlue="128" grayscaleMode="0" colorizeRed="255" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
